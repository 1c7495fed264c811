"""Recorded approval histories replay against today's workflow code (no nondeterminism).

Recorded on the time-skipping server by `test_record_histories` (run it with
SALESOPS_TEST_RECORD_APPROVAL_HISTORIES=1): the contract flow through a reminder, an
escalation, a delegation, a return, a resubmission and the approvals; a run that
continued as new while it waited, and the run after it; and an approval started on
the flow's first version after a second version was saved. A change to the workflow
that would break running approvals fails here; re-record only together with a
versioning plan (workflow.patched) for the approvals in flight.
"""

# ruff: noqa: F811  (the `world` fixture is imported from approval_world)
from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from kit.auth import Principal
from salesops.pipeline.v1 import approval_pb2 as ap
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import approvals
from services.pipeline.approval_workflows import WORKFLOW_NAME, ApprovalInput, ApprovalWorkflow, workflow_id
from services.pipeline.store import transactions
from tests.pipeline.approval_world import World, contract_flow, hours, world  # noqa: F401

HERE = Path(__file__).parent / "histories"
HISTORIES = sorted(HERE.glob("approval_*.json"))
TIMER_EVENTS = (
    EventType.EVENT_TYPE_TIMER_STARTED,
    EventType.EVENT_TYPE_TIMER_FIRED,
    EventType.EVENT_TYPE_TIMER_CANCELED,
)
RECORD = os.environ.get("SALESOPS_TEST_RECORD_APPROVAL_HISTORIES") == "1"


def test_histories_are_recorded() -> None:
    assert {p.stem for p in HISTORIES} == {
        "approval_continued_first_run",
        "approval_contract",
        "approval_continued_next_run",
        "approval_input_version",
        "approval_local_activities",
        "approval_open_together",
        "approval_previous_flow_version",
        "approval_steady_timer",
    }


def _load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json("approval", path.read_text())


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_a_recorded_history_replays(path: Path) -> None:
    history = _load(path)
    assert len(history.events) > 10
    result = await Replayer(workflows=[ApprovalWorkflow]).replay_workflow(history)
    assert result.replay_failure is None
    last = history.events[-1].event_type
    if path.stem == "approval_continued_first_run":
        assert last == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    else:
        assert last == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED


# ---------------------------------------------------------------- recording (on demand)


def _write(path: Path, text: str) -> None:
    path.write_text(text)


async def _save(world: World, approval_id: str, name: str, run_id: str | None = None) -> None:
    handle = world.env.client.get_workflow_handle(workflow_id("demo", approval_id), run_id=run_id)
    history = await handle.fetch_history()
    _write(HERE / f"{name}.json", history.to_json())


async def _act(world: World, method: str, req: object, user: str) -> ap.Approval:
    done: ap.Approval = (await world.call(method, req, user)).approval
    return done


@pytest.mark.skipif(not RECORD, reason="records histories only when asked")
@pytest.mark.timeout(600)
async def test_record_histories(world: World) -> None:
    await world.flow(contract_flow(idle=ap.IdlePolicy(remind_after=hours(24), escalate_after=hours(48))))
    await world.deal("big")
    await world.deal("big-2")
    await world.deal("big-3")

    # 1. The contract flow's ladder and every kind of action.
    await world.request("ap-rec", "big")
    await world.skip_to(await world.now() + timedelta(hours=49))
    await _act(
        world,
        "DelegateApprovalStep",
        pb.DelegateApprovalStepRequest(approval_id="ap-rec", step_key="gm", delegate_user_id="cfo-1"),
        "gm-1",
    )
    await _act(
        world,
        "ReturnApprovalStep",
        pb.ReturnApprovalStepRequest(approval_id="ap-rec", step_key="legal", comment="cap"),
        "legal-1",
    )
    await _act(
        world,
        "ResubmitApproval",
        pb.ResubmitApprovalRequest(approval_id="ap-rec", comment="capped"),
        "rep-a1",
    )
    for user in ("legal-1", "legal-2", "fin-1", "fin-2", "fin-3", "gm-1"):  # the gm step reopened for gm-1
        await _act(world, "ApproveApprovalStep", pb.ApproveApprovalStepRequest(approval_id="ap-rec"), user)
    await _save(world, "ap-rec", "approval_contract")

    # 2. A long wait that continues as new (a low limit stands in for thousands of events).
    async with transactions(world.db).read("demo") as uow:
        who = Principal("rep-a1", "demo", frozenset({"rep"}), "east/team-a", datetime(2100, 1, 1, tzinfo=UTC))
        run = await approvals.prepare(
            uow,
            who,
            ap.Approval(approval_id="ap-long", kind=ap.APPROVAL_KIND_CONTRACT, deal_id="big-2", title="long"),
            datetime.now(UTC),
        )
    handle = await world.env.client.start_workflow(
        WORKFLOW_NAME,
        ApprovalInput(run, "test", history_limit=30),
        id=workflow_id("demo", "ap-long"),
        task_queue=world.queue,
    )
    first_run = handle.first_execution_run_id
    await world.skip_to(await world.now() + timedelta(days=6))
    for user in ("legal-1", "legal-2", "fin-1", "fin-2", "fin-3", "gm-1"):
        await _act(world, "ApproveApprovalStep", pb.ApproveApprovalStepRequest(approval_id="ap-long"), user)
    assert (await world.get("ap-long")).state == ap.APPROVAL_STATE_APPROVED
    await _save(world, "ap-long", "approval_continued_first_run", first_run)
    await _save(world, "ap-long", "approval_continued_next_run")

    # 3. Started on version 1; version 2 saved while it runs; it finishes on version 1's steps.
    await world.request("ap-v1", "big-3")
    flow = contract_flow()
    del flow.steps[2]
    req = pb.UpdateApprovalFlowRequest(approval_flow=flow)
    req.update_mask.paths.append("steps")
    assert (await world.call("UpdateApprovalFlow", req)).approval_flow.version == 2
    for user in ("legal-1", "legal-2", "fin-1", "fin-2", "fin-3", "gm-1"):
        a = await _act(world, "ApproveApprovalStep", pb.ApproveApprovalStepRequest(approval_id="ap-v1"), user)
    assert a.flow_version == 1 and len(a.steps) == 3 and a.state == ap.APPROVAL_STATE_APPROVED
    await _save(world, "ap-v1", "approval_previous_flow_version")


async def test_a_run_on_local_activities_replays(world: World) -> None:
    """Runs started now carry INPUT_VERSION: local activities and steps opened together without a patch
    marker or a change-version search attribute, and they replay deterministically. The recorded
    histories keep the paths before: scheduled activities (the first ones), the LOCAL_ACTIVITIES patch
    alone (`approval_local_activities`) and with OPEN_TOGETHER (`approval_open_together`, this test's
    run before INPUT_VERSION), and INPUT_VERSION 1 (`approval_input_version`: a timer cancelled and
    started again by every approve). `approval_steady_timer.json` is this run, recorded with `-k local`
    and the recording flag."""
    await world.flow(contract_flow(idle=ap.IdlePolicy(remind_after=hours(24), escalate_after=hours(48))))
    await world.deal("big")
    await world.request("ap-local", "big")
    await world.skip_to(await world.now() + timedelta(hours=49))  # a reminder and an escalation (local too)
    for user in ("legal-1", "legal-2", "fin-1", "fin-2", "fin-3", "gm-1"):
        await _act(world, "ApproveApprovalStep", pb.ApproveApprovalStepRequest(approval_id="ap-local"), user)
    history = await world.env.client.get_workflow_handle(workflow_id("demo", "ap-local")).fetch_history()
    kinds = {e.event_type for e in history.events}
    markers = {
        e.marker_recorded_event_attributes.marker_name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    }
    assert markers == {"core_local_activity"}  # the local activities' results; no patch marker
    assert EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES not in kinds
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds
    # The wait's timer runs on through the approvals: the three steps share their deadlines, so no
    # approve moves the earliest one (before STEADY_TIMER each approve cancelled it and started another).
    timers = [e.event_type for e in history.events if e.event_type in TIMER_EVENTS]
    assert EventType.EVENT_TYPE_TIMER_CANCELED not in timers
    assert (
        timers.count(EventType.EVENT_TYPE_TIMER_STARTED) == timers.count(EventType.EVENT_TYPE_TIMER_FIRED) + 1
    )
    result = await Replayer(workflows=[ApprovalWorkflow]).replay_workflow(history)
    assert result.replay_failure is None
    if RECORD:
        _write(HERE / "approval_steady_timer.json", history.to_json())
