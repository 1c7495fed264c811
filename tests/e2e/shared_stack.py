"""One whole local stack shared, one test after another, by the tests that only need it running.

A start costs one to three minutes on two cores (launcher, services, Temporal, Redis, the seed).
The tests that take the `shared_stack` fixture (tests/conftest.py) work on their own ids,
customers and leads, compare before/after where they count, change no policy and stop nothing,
so one start serves them all. Their modules carry `MARKS`: one xdist group, so `--dist loadgroup`
runs them back to back on one worker, and the stack stops after the last of them (an idle stack
still costs a fifth of a core). A test that may change what the others rely on (the generated
requests of test_stack_schemathesis.py) carries `MARKS_LAST` and runs after them; one that changes
the stack's settings or kills a part of it starts its own (`tests.e2e.test_local_stack._start`).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

import pytest

from tests.e2e.test_local_stack import _start, _stop, _wait_ready

# One worker runs them back to back; the first also waits for the start (over a minute under the
# whole suite), so each gets room for it.
MARKS = [pytest.mark.slow, pytest.mark.xdist_group("shared-stack"), pytest.mark.timeout(900)]
# For a test that may change what the others rely on (generated requests as admin): it runs after them.
MARKS_LAST = [*MARKS, pytest.mark.shared_stack_last]


@dataclass
class SharedStack:
    proc: subprocess.Popen[str]
    gateway: str
    tokens: dict[str, str]
    services: dict[str, str]


_current: SharedStack | None = None


def get(tmp_path_factory: pytest.TempPathFactory) -> SharedStack:
    """The running shared stack, started (in a new temporary directory) if there is none."""
    global _current
    if _current is not None:
        code = _current.proc.poll()
        if code is None:
            return _current
        _current = None
        raise AssertionError(f"the shared stack exited (code {code}) while its tests ran")
    base = tmp_path_factory.mktemp("shared-stack")
    tokens_file = base / "tokens.json"
    proc = _start(base / "var", tokens_file)
    try:
        _wait_ready(proc, timeout=600)  # a changed web console is built first
    except BaseException:
        if proc.poll() is None:
            _stop(proc)
        raise
    info = json.loads(tokens_file.read_text())
    _current = SharedStack(proc, str(info["gateway"]), info["tokens"], info["services"])
    return _current


def stop() -> None:
    """Stop the shared stack if it runs: a clean exit (Ctrl-C, code 0) is asserted, as each test's
    own stack was."""
    global _current
    current, _current = _current, None
    if current is not None and current.proc.poll() is None:
        _stop(current.proc)
