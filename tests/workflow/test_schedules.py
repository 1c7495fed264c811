"""kit.schedules on a real Temporal dev server: a tenant's schedule is made once, left alone while its
spec holds, updated when it changes, deleted once; the keeper's reconcile step and its hourly schedule."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleHandle,
    ScheduleOverlapPolicy,
)

from kit import schedules, temporal
from kit.schedules import KeeperInput

RUN, KEEP, RECONCILE = "kittest.Run", "kittest.Keep", "kittest.reconcile"


@dataclass
class RunInput:
    tenant: str


@workflow.defn(name=RUN)
class RunWorkflow:
    @workflow.run
    async def run(self, inp: RunInput) -> str:
        return inp.tenant


@workflow.defn(name=KEEP)
class KeepWorkflow:
    @workflow.run
    async def run(self, inp: KeeperInput) -> int:
        return await schedules.run_keeper(RECONCILE, inp)


def family() -> schedules.Family:
    """Fresh ids per test: the dev server outlives nothing, but a rerun must not meet old schedules."""
    k = uuid.uuid4().hex[:8]
    return schedules.Family(
        f"kittest/run-{k}", f"kittest-run-{k}", f"kittest/keeper-{k}", f"kittest-keeper-{k}"
    )


def schedule(fam: schedules.Family, tenant: str, queue: str, when: schedules.When) -> Schedule:
    return schedules.tenant_schedule(fam, tenant, RUN, RunInput(tenant), queue, when)


async def started_workflow(handle: ScheduleHandle) -> str:
    """The id of the workflow the schedule started (polled: the machine is busy)."""
    for _ in range(600):
        described = await handle.describe()
        if described.info.recent_actions:
            action = described.info.recent_actions[0].action
            assert isinstance(action, ScheduleActionExecutionStartWorkflow)
            return action.workflow_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id} started nothing")


async def test_a_tenant_schedule_is_made_left_alone_updated_and_deleted(temporal_dev: Any) -> None:
    client: Client = temporal_dev.client
    fam, queue = family(), f"kittest-{uuid.uuid4().hex[:8]}"
    sid = fam.schedule_id("t1")
    friday = schedules.weekly(5, 20, 0, "Asia/Shanghai")
    assert friday.note == "weekly 5 20:00 Asia/Shanghai"
    # Two workers starting at once: the loser's create is not an error. Both usually see no schedule
    # (both say made); on a busy machine the second may look after the first made it (unchanged).
    made = await asyncio.gather(
        *(schedules.ensure(client, sid, schedule(fam, "t1", queue, friday)) for _ in "ab")
    )
    assert sorted(made) in ([False, True], [True, True]), made
    assert await schedules.ensure(client, sid, schedule(fam, "t1", queue, friday)) is False  # unchanged
    handle = client.get_schedule_handle(sid)
    described = await handle.describe()
    assert (described.schedule.state.note, described.schedule.spec.time_zone_name) == (
        friday.note,
        "Asia/Shanghai",
    )
    [cal] = described.schedule.spec.calendars
    assert (cal.day_of_week[0].start, cal.hour[0].start, cal.minute[0].start) == (5, 20, 0)
    assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP

    second = schedules.monthly(2, 5, 30, "Europe/Berlin")
    assert await schedules.ensure(client, sid, schedule(fam, "t1", queue, second)) is True
    described = await handle.describe()
    assert (described.schedule.state.note, described.schedule.spec.time_zone_name) == (
        "monthly 2 05:30 Europe/Berlin",
        "Europe/Berlin",
    )
    [cal] = described.schedule.spec.calendars
    assert (cal.day_of_month[0].start, cal.hour[0].start, cal.minute[0].start) == (2, 5, 30)
    assert [(r.start, r.end) for r in cal.day_of_week] == [(0, 6)]  # replaced (any day), not merged

    # Its action starts the tenant's workflow under the family's workflow id, on the queue given.
    async with temporal.build_worker(client, queue, workflows=[RunWorkflow]):
        await handle.trigger()
        started = await started_workflow(handle)
        assert started.startswith(fam.workflow_id("t1"))
        assert await client.get_workflow_handle(started).result() == "t1"

    assert await schedules.delete(client, sid) is True
    assert await schedules.delete(client, sid) is False  # already gone: not an error
    assert await schedules.ensure(client, sid, schedule(fam, "t1", queue, friday)) is True  # made again
    await schedules.delete(client, sid)


async def test_reconcile_gives_each_tenant_its_schedule_and_counts_the_changes(temporal_dev: Any) -> None:
    client: Client = temporal_dev.client
    fam, queue = family(), "kittest-q"
    when = {"a": schedules.weekly(1, 8, 0, "Asia/Shanghai"), "b": schedules.weekly(1, 8, 0, "Asia/Shanghai")}

    async def wanted(tenant: str) -> Schedule:
        return schedule(fam, tenant, queue, when[tenant])

    with pytest.raises(RuntimeError, match="Temporal client"):
        await schedules.reconcile(None, fam, ["a"], wanted)
    try:
        assert await schedules.reconcile(client, fam, ["a", "b"], wanted) == 2
        assert await schedules.reconcile(client, fam, ["a", "b"], wanted) == 0
        when["b"] = schedules.weekly(3, 9, 15, "Europe/Berlin")
        assert await schedules.reconcile(client, fam, ["a", "b"], wanted) == 1
        described = await client.get_schedule_handle(fam.schedule_id("b")).describe()
        assert described.schedule.state.note == "weekly 3 09:15 Europe/Berlin"
    finally:
        for tenant in when:
            await schedules.delete(client, fam.schedule_id(tenant))


class Reconciler:
    """The service's side of the keeper: which tenants, and each one's schedule."""

    def __init__(self, client: Client, fam: schedules.Family, tenants: list[str]) -> None:
        self.client, self.fam, self.tenants = client, fam, tenants

    @activity.defn(name=RECONCILE)
    async def reconcile(self, inp: KeeperInput) -> int:
        async def wanted(tenant: str) -> Schedule:
            return schedule(self.fam, tenant, inp.task_queue, schedules.monthly(1, 3, 0, "Asia/Shanghai"))

        return await schedules.reconcile(self.client, self.fam, self.tenants, wanted)


async def test_the_hourly_keeper_runs_the_reconcile_step(temporal_dev: Any) -> None:
    client: Client = temporal_dev.client
    fam, queue = family(), f"kittest-{uuid.uuid4().hex[:8]}"
    await schedules.ensure_keeper(client, fam, KEEP, queue)
    await schedules.ensure_keeper(client, fam, KEEP, queue)  # a second worker's start: left as it is
    keeper = client.get_schedule_handle(fam.keeper_schedule_id)
    try:
        described = await keeper.describe()
        [interval] = described.schedule.spec.intervals
        assert interval.every == timedelta(hours=1)
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        reconciler = Reconciler(client, fam, ["x", "y"])
        async with temporal.build_worker(
            client, queue, workflows=[KeepWorkflow], activities=[reconciler.reconcile]
        ):
            await keeper.trigger()
            started = await started_workflow(keeper)
            assert started.startswith(fam.keeper_workflow_id)
            assert await client.get_workflow_handle(started).result() == 2
        for tenant in reconciler.tenants:
            got = await client.get_schedule_handle(fam.schedule_id(tenant)).describe()
            assert got.schedule.state.note == "monthly 1 03:00 Asia/Shanghai"
    finally:
        for sid in (fam.keeper_schedule_id, fam.schedule_id("x"), fam.schedule_id("y")):
            await schedules.delete(client, sid)
