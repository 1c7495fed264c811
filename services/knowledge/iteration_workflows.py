"""The monthly iteration's Temporal workflows (deterministic: workflow APIs only).

A schedule per tenant (`knowledge/monthly-iteration/<tenant>`, IterationPolicy's day
and time of month in the tenant's zone, see `iteration_activities`) starts
`MonthlyIteration`, which asks one activity to run the month before the tenant's
today at the workflow's clock; the activity runs the same use case as
RunMonthlyIteration (one report per month, so a retry returns it). An hourly
schedule runs `EnsureIterationSchedules`, keeping every tenant's schedule in line
with its settings (a new tenant, a changed zone, day or time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from kit import schedules
from kit.schedules import KeeperInput

MONTHLY = "knowledge.MonthlyIteration"
ENSURE = "knowledge.EnsureIterationSchedules"
RUN = "knowledge.run_monthly_iteration"
RECONCILE = "knowledge.ensure_iteration_schedules"
RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=5))


@dataclass
class MonthlyInput:
    tenant: str


@dataclass
class RunInput:
    tenant: str
    at: str  # ISO-8601 UTC: the workflow's clock when it ran


@dataclass
class RunResult:
    report_id: str = ""
    state: int = 0  # IterationReportState


@workflow.defn(name=MONTHLY)
class MonthlyIterationWorkflow:
    @workflow.run
    async def run(self, inp: MonthlyInput) -> RunResult:
        result: RunResult = await workflow.execute_activity(
            RUN,
            RunInput(inp.tenant, workflow.now().isoformat()),
            result_type=RunResult,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RETRY,
        )
        return result


@workflow.defn(name=ENSURE)
class EnsureIterationSchedulesWorkflow:
    @workflow.run
    async def run(self, inp: KeeperInput) -> int:
        return await schedules.run_keeper(RECONCILE, inp)


__all__ = [
    "ENSURE",
    "MONTHLY",
    "RECONCILE",
    "RUN",
    "EnsureIterationSchedulesWorkflow",
    "MonthlyInput",
    "MonthlyIterationWorkflow",
    "RunInput",
    "RunResult",
]
