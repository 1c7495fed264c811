"""A query the workflow's worker fails (its deadlock detector on a starved CPU did it in CI) answers
UNAVAILABLE, so GetApproval tells the caller to try again instead of INTERNAL."""

from __future__ import annotations

import uuid

import pytest
from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from kit.errors import Unavailable
from services.pipeline.approval_activities import state
from services.pipeline.approval_workflows import QUERY, workflow_id


@workflow.defn(name="FailingApprovalQuery")
class FailingQuery:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.query(name=QUERY)
    def approval(self) -> None:
        raise RuntimeError("the task failed")


async def test_a_failed_query_is_unavailable(temporal_skipping) -> None:  # type: ignore[no-untyped-def]
    client = temporal_skipping.client
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=queue, workflows=[FailingQuery], workflow_runner=UnsandboxedWorkflowRunner()
    ):
        handle = await client.start_workflow(
            FailingQuery.run, id=workflow_id("demo", "a-1"), task_queue=queue
        )
        with pytest.raises(Unavailable, match="did not answer"):
            await state(client, "demo", "a-1")
        await handle.terminate()
