"""IntakeGroups' turn-taking (services/leads/api/intake_groups.py), with stand-in intakes: a lone
call runs at once; calls arriving meanwhile are served as one group, in arrival order; a row's
error is its caller's alone; a failed group serves its callers alone; a cancelled caller is left
out; right after a group, a call lingers for the group's callers to come back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from kit.auth import Principal
from kit.errors import InvalidArgument, SalesopsError
from salesops.leads.v1 import lead_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads.api.intake_groups import IntakeGroups, Waiting

AT = datetime(2026, 1, 5, 9, tzinfo=UTC)


def _who() -> Principal:
    return Principal(user_id="admin", tenant="demo", roles=frozenset({"admin"}), org="", expires_at=AT)


def _req(name: str) -> pb.CreateLeadRequest:
    return pb.CreateLeadRequest(lead=lead_pb2.Lead(lead_id=name))


def _resp(name: str, how: str) -> pb.CreateLeadResponse:
    return pb.CreateLeadResponse(intake_id=f"{how}:{name}")


class _Stand:
    """A lone intake that waits for `release`; a group intake that records its groups."""

    def __init__(self, fail_group: bool = False) -> None:
        self.release = asyncio.Event()
        self.groups: list[list[str]] = []
        self.alone: list[str] = []
        self.fail_group = fail_group

    async def run_alone(
        self, who: Principal, request: pb.CreateLeadRequest, at: datetime
    ) -> pb.CreateLeadResponse:
        self.alone.append(request.lead.lead_id)
        if len(self.alone) == 1:
            await self.release.wait()
        return _resp(request.lead.lead_id, "alone")

    async def run_group(
        self, tenant: str, waiting: list[Waiting]
    ) -> list[pb.CreateLeadResponse | SalesopsError]:
        self.groups.append([w.request.lead.lead_id for w in waiting])
        if self.fail_group:
            raise RuntimeError("the database said no")
        return [
            InvalidArgument("bad row")
            if w.request.lead.lead_id == "bad"
            else _resp(w.request.lead.lead_id, "group")
            for w in waiting
        ]


async def _started(groups: IntakeGroups, name: str) -> asyncio.Task[pb.CreateLeadResponse]:
    task = asyncio.create_task(groups.create(_who(), _req(name), AT, name))
    await asyncio.sleep(0)  # let it reach its turn (or the queue)
    return task


async def test_a_lone_call_runs_at_once_and_later_ones_form_one_group() -> None:
    stand = _Stand()
    groups = IntakeGroups(stand.run_alone, stand.run_group)
    first = await _started(groups, "first")
    assert stand.alone == ["first"]
    waiting = [await _started(groups, n) for n in ("a", "bad", "b")]
    assert stand.groups == []
    stand.release.set()
    assert (await first).intake_id == "alone:first"
    assert (await waiting[0]).intake_id == "group:a"
    with pytest.raises(InvalidArgument):
        await waiting[1]
    assert (await waiting[2]).intake_id == "group:b"
    assert stand.groups == [["a", "bad", "b"]]
    # Right after a group, a call waits a little for the group's other callers (the linger), then
    # goes in a group of its own; after a lone call the key is idle and the next runs alone, at once.
    assert (await groups.create(_who(), _req("later"), AT, "later")).intake_id == "group:later"
    assert (await groups.create(_who(), _req("idle"), AT, "idle")).intake_id == "alone:idle"


async def test_a_failed_group_serves_each_caller_alone() -> None:
    stand = _Stand(fail_group=True)
    groups = IntakeGroups(stand.run_alone, stand.run_group)
    first = await _started(groups, "first")
    waiting = [await _started(groups, n) for n in ("a", "b")]
    stand.release.set()
    await first
    assert [(await w).intake_id for w in waiting] == ["alone:a", "alone:b"]
    assert stand.groups == [["a", "b"]] and stand.alone == ["first", "a", "b"]


async def test_a_caller_cancelled_while_waiting_is_left_out() -> None:
    stand = _Stand()
    groups = IntakeGroups(stand.run_alone, stand.run_group)
    first = await _started(groups, "first")
    gone, kept = await _started(groups, "gone"), await _started(groups, "kept")
    gone.cancel()
    await asyncio.sleep(0)
    stand.release.set()
    await first
    assert (await kept).intake_id == "group:kept"
    assert stand.groups == [["kept"]]
