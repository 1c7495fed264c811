"""Per-tenant Temporal schedules in the tenant's time zone, kept in step by an hourly keeper.

A service says which workflow a tenant's schedule starts, when (a calendar in the
tenant's zone) and which tenants have one; this module creates, updates and deletes
the schedules. A schedule's note names the spec it was made for, so an unchanged one
is left alone and a changed zone or time is one update. The keeper is an hourly
schedule whose workflow runs the service's reconcile activity (`reconcile` here), so
a new tenant or a changed setting reaches its schedule within the hour.

Ids are business keys that running deployments and recorded histories carry: a
`Family` spells them out, none is derived here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import RetryPolicy
from temporalio.service import RPCError, RPCStatusCode

KEEPER_EVERY = timedelta(hours=1)
KEEPER_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=5))
KEEPER_TIMEOUT = timedelta(minutes=10)


@dataclass(frozen=True)
class Family:
    """The ids of one per-tenant schedule family and of its keeper."""

    schedule_prefix: str  # a tenant's schedule: <schedule_prefix>/<tenant>
    workflow_prefix: str  # the workflow it starts: <workflow_prefix>/<tenant>
    keeper_schedule_id: str
    keeper_workflow_id: str

    def schedule_id(self, tenant: str) -> str:
        return f"{self.schedule_prefix}/{tenant}"

    def workflow_id(self, tenant: str) -> str:
        return f"{self.workflow_prefix}/{tenant}"


@dataclass(frozen=True)
class When:
    """A calendar in a zone, and the note that names it (compared to spot a changed spec)."""

    spec: ScheduleSpec
    note: str


def weekly(day_of_week: int, hour: int, minute: int, zone: str) -> When:
    """Every week on `day_of_week` (Temporal's numbering: SUNDAY = 0) at hour:minute in `zone`."""
    calendar = ScheduleCalendarSpec(
        day_of_week=[ScheduleRange(day_of_week)], hour=[ScheduleRange(hour)], minute=[ScheduleRange(minute)]
    )
    spec = ScheduleSpec(calendars=[calendar], time_zone_name=zone)
    return When(spec, f"weekly {day_of_week} {hour:02d}:{minute:02d} {zone}")


def monthly(day_of_month: int, hour: int, minute: int, zone: str) -> When:
    """Every month on `day_of_month` at hour:minute in `zone`."""
    calendar = ScheduleCalendarSpec(
        day_of_month=[ScheduleRange(day_of_month)], hour=[ScheduleRange(hour)], minute=[ScheduleRange(minute)]
    )
    spec = ScheduleSpec(calendars=[calendar], time_zone_name=zone)
    return When(spec, f"monthly {day_of_month} {hour:02d}:{minute:02d} {zone}")


def tenant_schedule(
    family: Family, tenant: str, workflow_type: str, arg: Any, task_queue: str, when: When
) -> Schedule:
    """The tenant's schedule: starts `workflow_type(arg)`, skipping a run while the last still runs."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            workflow_type, arg, id=family.workflow_id(tenant), task_queue=task_queue
        ),
        spec=when.spec,
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=when.note),
    )


async def ensure(client: Client, schedule_id: str, wanted: Schedule) -> bool:
    """Create the schedule, or update it when its note differs from `wanted`'s. True if it changed."""
    handle = client.get_schedule_handle(schedule_id)
    try:
        described = await handle.describe()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        with contextlib.suppress(ScheduleAlreadyRunningError):  # another worker made it meanwhile
            await client.create_schedule(schedule_id, wanted)
        return True
    if described.schedule.state.note == wanted.state.note:
        return False

    def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=wanted)

    await handle.update(update)
    return True


async def delete(client: Client, schedule_id: str) -> bool:
    """Delete the schedule; False when there was none (deleted by another worker, or never made)."""
    try:
        await client.get_schedule_handle(schedule_id).delete()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        return False
    return True


async def reconcile(
    client: Client | None,
    family: Family,
    tenants: Iterable[str],
    wanted: Callable[[str], Awaitable[Schedule]],
) -> int:
    """The keeper's step: each tenant's schedule as `wanted(tenant)` says; returns how many changed."""
    if client is None:
        raise RuntimeError("schedules need the Temporal client")
    changed = 0
    for tenant in tenants:
        changed += await ensure(client, family.schedule_id(tenant), await wanted(tenant))
    return changed


@dataclass
class KeeperInput:
    """The keeper workflow's input (recorded histories carry it as {"task_queue": ...})."""

    task_queue: str


async def ensure_keeper(client: Client, family: Family, keeper_workflow: str, task_queue: str) -> None:
    """The hourly schedule running `keeper_workflow`; one already there is left as it is."""
    keeper = Schedule(
        action=ScheduleActionStartWorkflow(
            keeper_workflow, KeeperInput(task_queue), id=family.keeper_workflow_id, task_queue=task_queue
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=KEEPER_EVERY)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await client.create_schedule(family.keeper_schedule_id, keeper)


async def run_keeper(reconcile_activity: str, inp: KeeperInput) -> int:
    """The keeper workflow's body (workflow code): one run of the service's reconcile activity."""
    changed: int = await workflow.execute_activity(
        reconcile_activity,
        inp,
        result_type=int,
        start_to_close_timeout=KEEPER_TIMEOUT,
        retry_policy=KEEPER_RETRY,
    )
    return changed


__all__ = [
    "Family",
    "KeeperInput",
    "When",
    "delete",
    "ensure",
    "ensure_keeper",
    "monthly",
    "reconcile",
    "run_keeper",
    "tenant_schedule",
    "weekly",
]
