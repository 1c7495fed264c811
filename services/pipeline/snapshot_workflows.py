"""The weekly forecast snapshot and call locks (Temporal workflow code: deterministic, workflow APIs only).

A Temporal schedule per tenant (`pipeline/weekly-snapshot/<tenant>`, the tenant's
snapshot day and time in its zone, see `snapshot_activities`) starts
`WeeklyForecastSnapshot`; it asks one activity per period kind (the current month
and the current quarter) to take the snapshot through the same use case as
TakeForecastSnapshot and to lock the calls of every lock point reached. The clock
is the workflow's; dates in the tenant zone are computed by the activity. An hourly
schedule runs `EnsureSnapshotSchedules`, which keeps every tenant's schedule in
line with its settings (a new tenant, a changed zone or snapshot time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from kit import schedules
from kit.schedules import KeeperInput

WEEKLY = "pipeline.WeeklyForecastSnapshot"
ENSURE = "pipeline.EnsureSnapshotSchedules"
TAKE = "pipeline.take_weekly_snapshot"
RECONCILE = "pipeline.ensure_snapshot_schedules"
GRANULARITIES = ("MONTH", "QUARTER")  # the contract: the weekly job snapshots the month and the quarter
RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=5))


@dataclass
class WeeklyInput:
    tenant: str


@dataclass
class TakeInput:
    tenant: str
    granularity: str
    at: str  # ISO-8601 UTC: the workflow's clock when it ran


@dataclass
class Taken:
    snapshot_id: str = ""
    locked: list[str] = field(default_factory=list)  # lock points taken by this run


@dataclass
class WeeklyResult:
    taken: list[Taken] = field(default_factory=list)


@workflow.defn(name=WEEKLY)
class WeeklySnapshotWorkflow:
    @workflow.run
    async def run(self, inp: WeeklyInput) -> WeeklyResult:
        at = workflow.now().isoformat()
        out = WeeklyResult()
        for granularity in GRANULARITIES:
            taken = await workflow.execute_activity(
                TAKE,
                TakeInput(inp.tenant, granularity, at),
                result_type=Taken,
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=RETRY,
            )
            out.taken.append(taken)
        return out


@workflow.defn(name=ENSURE)
class EnsureSnapshotSchedulesWorkflow:
    @workflow.run
    async def run(self, inp: KeeperInput) -> int:
        return await schedules.run_keeper(RECONCILE, inp)


__all__ = [
    "ENSURE",
    "GRANULARITIES",
    "RECONCILE",
    "TAKE",
    "WEEKLY",
    "EnsureSnapshotSchedulesWorkflow",
    "TakeInput",
    "Taken",
    "WeeklyInput",
    "WeeklyResult",
    "WeeklySnapshotWorkflow",
]
