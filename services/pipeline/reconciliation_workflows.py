"""A deal's reconciliation timer (Temporal workflow code: deterministic, workflow APIs only).

One workflow per deal with finance facts or a won outcome (`pipeline-reconciliation/<tenant>/<deal>`):
it runs the cross-validation rules at the workflow's clock, sleeps on a durable timer until the
next instant time alone can change the answer (a contract's payment terms plus grace running out,
a won deal's grace for its contract), and runs them again. New facts and deal outcomes signal it
(signal-with-start from the consumer of pipeline's own events), so a new due date is planned at
once. When nothing is left to wait for, it ends; the next event starts it again. Deadlines are
computed by the activity (tenant zone), never here.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

WORKFLOW_NAME = "PipelineReconciliation"
SIGNAL = "changed"
CHECK = "pipeline.reconciliation_check"
ROUNDS = 50  # then continue as new: the history stays short


def workflow_id(tenant: str, deal_id: str) -> str:
    return f"pipeline-reconciliation/{tenant}/{deal_id}"


@dataclass
class ReconciliationInput:
    tenant: str
    deal_id: str


@dataclass
class CheckInput:
    tenant: str
    deal_id: str
    at: str  # ISO-8601 UTC: the workflow's clock, the instant the rules run for


@dataclass
class Checked:
    next_at: str = ""  # ISO-8601 UTC of the next time-based change; "" = nothing to wait for
    open_issues: int = 0


@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class ReconciliationWorkflow:
    def __init__(self) -> None:
        self._changed = False
        self.last = Checked()

    @workflow.signal(name=SIGNAL)
    def changed(self) -> None:
        self._changed = True

    @workflow.query(name="last")
    def last_check(self) -> Checked:
        return self.last

    @workflow.run
    async def run(self, inp: ReconciliationInput) -> Checked:
        retry = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
        for _ in range(ROUNDS):
            self._changed = False
            self.last = await workflow.execute_activity(
                CHECK,
                CheckInput(inp.tenant, inp.deal_id, workflow.now().isoformat()),
                result_type=Checked,
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=retry,
            )
            if not self.last.next_at:
                if not self._changed:
                    return self.last
                continue
            delay = (datetime.fromisoformat(self.last.next_at) - workflow.now()).total_seconds()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(lambda: self._changed, timeout=timedelta(seconds=delay))
        workflow.continue_as_new(inp)
