"""CreateApproval resolves the first steps' openings in its own read and the workflow starts with them
open (no open-steps activity); openings made too far from the workflow's clock are not used (the
activity opens the steps, as in runs started without them). Both replay."""

# ruff: noqa: F811  (the `world` fixture is imported from approval_world)
from __future__ import annotations

from datetime import UTC, timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from services.pipeline.approval_workflows import ApprovalWorkflow, workflow_id
from tests.pipeline.approval_world import World, contract_flow, states, world  # noqa: F401

PARALLEL = {"legal": "ACTIVE", "finance_risk": "ACTIVE", "gm": "ACTIVE"}


async def _local_activities(world: World, approval_id: str) -> tuple[int, WorkflowHistory]:
    history = await world.env.client.get_workflow_handle(workflow_id("demo", approval_id)).fetch_history()
    markers = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    return len(markers), history


async def _replays(history: WorkflowHistory) -> None:
    result = await Replayer(workflows=[ApprovalWorkflow]).replay_workflow(history)
    assert result.replay_failure is None


async def test_create_starts_the_run_with_its_first_steps_open(world: World) -> None:
    await world.flow(contract_flow())
    await world.deal("big")
    a = await world.request("ap-first", "big")
    assert states(a) == PARALLEL
    assert all(s.assignee_user_ids for s in a.steps)
    count, history = await _local_activities(world, "ap-first")
    assert count == 1  # the projection's record only: the steps opened from the input
    await _replays(history)


async def test_openings_far_from_the_workflow_clock_are_resolved_again(world: World) -> None:
    """The time-skipping server's clock runs hours ahead of the API's: its deadlines would be wrong."""
    await world.flow(contract_flow())
    await world.deal("big")
    await world.skip_to(await world.now() + timedelta(hours=3))
    a = await world.request("ap-far", "big")
    assert states(a) == PARALLEL
    assert all(s.assignee_user_ids for s in a.steps)
    opened = a.steps[0].activate_time.ToDatetime(tzinfo=UTC)
    assert abs(opened - await world.now()) < timedelta(minutes=5)  # the workflow's clock, not the API's
    count, history = await _local_activities(world, "ap-far")
    assert count == 2  # open-steps, then the record
    await _replays(history)
