"""The workflow that ends a closed deal's running approvals (Temporal workflow code; apart from the
approval workflow itself so each file stays readable; `approval_workflows` re-exports it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

LOST_WORKFLOW_NAME = "PipelineApprovalsOfLostDeal"
CANCEL_OF_LOST = "pipeline.approval_cancel_of_lost_deal"


def lost_workflow_id(tenant: str, event_id: str) -> str:
    return f"pipeline-approval-lost/{tenant}/{event_id}"


@dataclass
class LostDealInput:
    """A closed deal whose running approvals end CANCELLED (the name is the lost-only original's)."""

    tenant: str
    deal_id: str
    event_id: str  # the DealLost / DealWon event: the cancels' action ids, so a repeat cancels nothing twice
    outcome: str = "LOST"  # or "WON"; histories from before won deals were handled carry none: LOST


@workflow.defn(name=LOST_WORKFLOW_NAME, sandboxed=False)
class LostDealApprovalsWorkflow:
    """Cancels a closed (lost or won) deal's running approvals, as a step of its own after the DealLost /
    DealWon consumer committed.

    The consumer only starts this (one call to the server): waiting there for the cancels would hold its
    transaction (on SQLite the write lock) while each cancel's projection write waits for that lock."""

    @workflow.run
    async def run(self, inp: LostDealInput) -> None:
        await workflow.execute_activity(
            CANCEL_OF_LOST,
            inp,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
            ),
        )


__all__ = [
    "CANCEL_OF_LOST",
    "LOST_WORKFLOW_NAME",
    "LostDealApprovalsWorkflow",
    "LostDealInput",
    "lost_workflow_id",
]
