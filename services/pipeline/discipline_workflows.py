"""The tenant's discipline timer (Temporal workflow code: deterministic, workflow APIs only).

One workflow per tenant (`pipeline-discipline/<tenant>`) sleeps on a durable timer
until the next instant something is due (a weekly update deadline in the tenant
zone, a deal's dwell deadline, the weekly process-health run), then runs the sweep
for that instant. Deal events signal it (signal-with-start from the consumer), so a
new stage entry with a short limit is planned at once. Deadlines are computed by
the activities (tenant zone, business calendar), never here.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

WORKFLOW_NAME = "PipelineDiscipline"
SIGNAL = "changed"
PLAN = "pipeline.discipline_plan"
SWEEP = "pipeline.discipline_sweep"
ROUNDS = 50  # then continue as new: the history stays short
# A burst of deal events plans once: after a signal the timer waits this long before planning.
COALESCE = "coalesce-signals"
COALESCE_WINDOW = timedelta(minutes=1)


def workflow_id(tenant: str) -> str:
    return f"pipeline-discipline/{tenant}"


@dataclass
class DisciplineInput:
    tenant: str


@dataclass
class PlanInput:
    tenant: str
    now: str  # ISO-8601 UTC: the workflow's clock


@dataclass
class Plan:
    at: str  # ISO-8601 UTC: when the sweep must run next


@dataclass
class SweepInput:
    tenant: str
    at: str  # ISO-8601 UTC: the instant the rules run for


@dataclass
class Swept:
    frozen: int = 0
    dwell_flagged: int = 0
    health_weeks: int = 0


@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class DisciplineWorkflow:
    def __init__(self) -> None:
        self._changed = False
        self.swept = Swept()

    @workflow.signal(name=SIGNAL)
    def changed(self) -> None:
        self._changed = True

    @workflow.query(name="swept")
    def totals(self) -> Swept:
        return self.swept

    @workflow.run
    async def run(self, inp: DisciplineInput) -> None:
        timeout = timedelta(minutes=5)
        retry = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
        woken = False
        for _ in range(ROUNDS):
            # Versioned: histories from before the window replay without it.
            if woken and workflow.patched(COALESCE):
                await workflow.sleep(COALESCE_WINDOW)
            woken = False
            self._changed = False
            plan: Plan = await workflow.execute_activity(
                PLAN,
                PlanInput(inp.tenant, workflow.now().isoformat()),
                result_type=Plan,
                start_to_close_timeout=timeout,
                retry_policy=retry,
            )
            delay = (datetime.fromisoformat(plan.at) - workflow.now()).total_seconds()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(lambda: self._changed, timeout=timedelta(seconds=delay))
            if self._changed:
                woken = True
                continue  # something changed before the deadline: plan again
            done: Swept = await workflow.execute_activity(
                SWEEP,
                SweepInput(inp.tenant, plan.at),
                result_type=Swept,
                start_to_close_timeout=timedelta(minutes=30),
                retry_policy=retry,
            )
            self.swept = Swept(
                self.swept.frozen + done.frozen,
                self.swept.dwell_flagged + done.dwell_flagged,
                self.swept.health_weeks + done.health_weeks,
            )
        workflow.continue_as_new(inp)


__all__ = [
    "PLAN",
    "SIGNAL",
    "SWEEP",
    "WORKFLOW_NAME",
    "DisciplineInput",
    "DisciplineWorkflow",
    "Plan",
    "PlanInput",
    "SweepInput",
    "Swept",
    "workflow_id",
]
