"""Readiness under load: a dependency that was up and answers slowly is failing only after
`slow_rounds` slow rounds in a row; a refusal fails at once; a dependency never seen up is not
given that grace (the process must not say SERVING before it has seen every dependency answer)."""

from __future__ import annotations

import asyncio

from kit.grpc.health import DetailedHealthServicer, ReadinessMonitor


class _Dependency:
    def __init__(self) -> None:
        self.mode = "up"

    async def __call__(self) -> None:
        if self.mode == "slow":
            await asyncio.sleep(1.0)  # well past the monitor's timeout
        elif self.mode == "refused":
            raise ConnectionRefusedError("refused")


def _monitor(dep: _Dependency) -> ReadinessMonitor:
    return ReadinessMonitor(
        DetailedHealthServicer(), [], {"database": dep}, timeout=0.05, slow_rounds=3, advisories={}
    )


async def test_slow_answers_of_a_dependency_that_was_up_fail_it_only_in_a_row() -> None:
    dep = _Dependency()
    monitor = _monitor(dep)
    assert await monitor.check_now()
    dep.mode = "slow"
    assert await monitor.check_now()  # one slow round: still ready
    assert await monitor.check_now()  # two
    assert not await monitor.check_now()  # three in a row: failing
    assert "no answer within" in monitor.failing["database"]
    dep.mode = "up"
    assert await monitor.check_now()
    # The count starts again after an answer: a slow round between good ones never fails it.
    dep.mode = "slow"
    assert await monitor.check_now()
    dep.mode = "up"
    assert await monitor.check_now()
    dep.mode = "slow"
    assert await monitor.check_now()
    assert await monitor.check_now()
    assert not await monitor.check_now()


async def test_a_refusal_fails_at_once_and_a_never_seen_dependency_gets_no_grace() -> None:
    dep = _Dependency()
    monitor = _monitor(dep)
    assert await monitor.check_now()
    dep.mode = "refused"
    assert not await monitor.check_now()
    assert monitor.failing["database"].startswith("ConnectionRefusedError")
    fresh = _Dependency()
    fresh.mode = "slow"
    assert not await _monitor(fresh).check_now()  # slow from the start: not ready
