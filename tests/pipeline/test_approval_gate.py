"""Gate wiring: entering a stage starts its on-entry flow; the next stage's gate waits for it to be APPROVED."""

# ruff: noqa: F811  (the `world` fixture is imported from approval_world)
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import grpc
import pytest
from redis.asyncio import Redis

from kit.events.consumer import StreamConsumer
from salesops.common.v1.types_pb2 import AttachmentRef
from salesops.pipeline.v1 import approval_pb2 as ap
from salesops.pipeline.v1 import deal_pb2, stage_model_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import approval_entry, approvals
from services.pipeline.approval_activities import ENTRY_CONSUMER, entry_handler
from services.pipeline.stage_models import DEFAULT
from services.pipeline.store import processed_events
from tests.leads.helpers import events
from tests.pipeline.approval_world import World, contract_flow, world  # noqa: F401

pytestmark = pytest.mark.timeout(300)


def gated_model() -> stage_model_pb2.StageModel:
    """needs_confirmed starts the contract flow on entry; solution_confirmed needs it APPROVED."""
    model = stage_model_pb2.StageModel()
    model.CopyFrom(DEFAULT)
    model.stages[1].entry_criteria.Clear()
    model.stages[1].on_entry_approval_flow_ids.append("contract_over_500k")
    model.stages[2].entry_criteria.Clear()
    model.stages[2].entry_criteria.required_approval_flow_ids.append("contract_over_500k")
    return model


async def test_entering_a_stage_starts_its_flow_and_the_gate_waits_for_the_approval(world: World) -> None:
    await world.call("UpdateStageModel", pb.UpdateStageModelRequest(stage_model=gated_model()))
    await world.flow(contract_flow())
    await world.deal("big")
    await world.deal("small", amount_minor=1_000_000)  # under the trigger: no flow starts
    first, second = DEFAULT.stages[1].stage_id, DEFAULT.stages[2].stage_id
    moved = await world.call("MoveStage", pb.MoveStageRequest(deal_id="big", to_stage_id=first), "rep-a1")
    await world.call("MoveStage", pb.MoveStageRequest(deal_id="small", to_stage_id=first), "rep-a1")

    # The worker's consumer, fed the committed DealStageChanged events (twice: redelivery starts nothing new).
    rt = SimpleNamespace(
        db=world.db, temporal=world.env.client, settings=SimpleNamespace(task_queue=world.queue)
    )
    handle = entry_handler(rt)  # type: ignore[arg-type]
    changes = await events(world.db, "pipeline.DealStageChanged")
    for _, envelope in changes + changes:
        async with world.db.session("demo") as session:  # as the consumer runs it: its own transaction
            await handle(envelope, session)
            await session.commit()
    approval_id = approval_entry.entry_approval_id(moved.gate_review.review_id, "contract_over_500k")

    async def projected() -> bool:  # the consumer does not wait for the run's first projection
        found = await world.call("ListApprovals", pb.ListApprovalsRequest(), "admin")
        return bool(found.approvals)

    await world.until(projected)
    listed = await world.call("ListApprovals", pb.ListApprovalsRequest(), "admin")
    assert [a.approval_id for a in listed.approvals] == [approval_id]
    a = listed.approvals[0]
    assert (a.deal_id, a.requester_user_id, a.state) == ("big", "rep-a1", ap.APPROVAL_STATE_IN_PROGRESS)

    # CheckGate lists the pending approval as missing; the move is refused with it.
    review = (
        await world.call("CheckGate", pb.CheckGateRequest(deal_id="big", to_stage_id=second), "rep-a1")
    ).gate_review
    missing = [i for i in review.items if not i.satisfied]
    assert [(i.kind, i.key) for i in missing] == [(deal_pb2.GATE_ITEM_KIND_APPROVAL, "contract_over_500k")]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.call("MoveStage", pb.MoveStageRequest(deal_id="big", to_stage_id=second), "rep-a1")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # The requester sees the state; an approver sees what they decide; a rep of another team does not.
    assert (await world.get(approval_id, "rep-a1")).state == ap.APPROVAL_STATE_IN_PROGRESS
    assert (await world.get(approval_id, "sup-a")).deal_id == "big"  # the requester's manager
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.get(approval_id, "rep-b1")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    for user in ("legal-1", "legal-2", "fin-1", "fin-2", "fin-3", "gm-1"):
        await world.call("ApproveApprovalStep", pb.ApproveApprovalStepRequest(approval_id=approval_id), user)
    assert (await world.get(approval_id)).state == ap.APPROVAL_STATE_APPROVED
    review = (
        await world.call("CheckGate", pb.CheckGateRequest(deal_id="big", to_stage_id=second), "rep-a1")
    ).gate_review
    assert all(i.satisfied for i in review.items)
    moved = await world.call("MoveStage", pb.MoveStageRequest(deal_id="big", to_stage_id=second), "rep-a1")
    assert moved.deal.stage_id == second


async def test_a_lost_deal_cancels_its_running_approvals(world: World) -> None:
    await world.flow(contract_flow())
    await world.deal("big")
    await world.request("ap-lost", "big")
    lose = pb.MarkLostRequest(deal_id="big", category=stage_model_pb2.LOST_REASON_CATEGORY_PRICE)
    await world.call("MarkLost", lose, "rep-a1")
    rt = SimpleNamespace(
        db=world.db, temporal=world.env.client, settings=SimpleNamespace(task_queue=world.queue)
    )
    # The real consumer path: its transaction holds the processed-event row (on SQLite the write lock)
    # while the handler runs, then commits. Waiting there on the cancel's projection write would deadlock.
    handler = entry_handler(rt)  # type: ignore[arg-type]
    consumer = StreamConsumer(
        Redis(), world.db, ENTRY_CONSUMER.group, ["-"], handler, processed_table=processed_events
    )
    [(_, lost)] = await events(world.db, "pipeline.DealLost")
    async with world.db.session("demo") as session:  # a delivery that crashes before its commit
        assert await consumer._claim_event(session, lost.id)
        await asyncio.wait_for(handler(lost, session), 60)
        await session.rollback()
    applied = [await asyncio.wait_for(consumer._apply(lost), 60) for _ in range(2)]
    assert applied == [True, False]  # the redelivery after the commit is acknowledged unseen

    async def cancelled() -> bool:
        found = await world.call("ListApprovals", pb.ListApprovalsRequest(), "admin")
        return [x.state for x in found.approvals] == [ap.APPROVAL_STATE_CANCELLED]

    await world.until(cancelled)
    a = await world.get("ap-lost")
    assert a.state == ap.APPROVAL_STATE_CANCELLED
    cancels = [x for x in a.history if x.type == ap.APPROVAL_ACTION_TYPE_CANCEL]
    assert [(x.actor_user_id, x.comment) for x in cancels] == [("system:pipeline", "the deal was lost")]


async def _pending(world: World, user: str) -> list[str]:
    found = await world.call("ListMyPendingApprovals", pb.ListMyPendingApprovalsRequest(), user)
    return [i.approval.approval_id for i in found.items]


async def test_a_won_deal_cancels_its_running_approvals_and_takes_no_new_one(world: World) -> None:
    """Closing a deal as won ends its running approvals (CANCELLED, audited with why, gone from the
    approvers' queues), as losing it does; a closed deal takes no new approval (DEAL_CLOSED)."""
    await world.flow(contract_flow())
    await world.deal("big")
    await world.request("ap-won", "big")
    assert await _pending(world, "gm-1") == ["ap-won"]
    evidence = deal_pb2.DealEvidence(
        evidence_id="big-sc",
        evidence_type_id="signed_contract",
        attachment=AttachmentRef(uri="s3://contract"),
    )
    await world.call(
        "CreateDealEvidence", pb.CreateDealEvidenceRequest(deal_id="big", evidence=evidence), "rep-a1"
    )
    await world.call("MarkWon", pb.MarkWonRequest(deal_id="big"), "rep-a1")
    rt = SimpleNamespace(
        db=world.db, temporal=world.env.client, settings=SimpleNamespace(task_queue=world.queue)
    )
    handler = entry_handler(rt)  # type: ignore[arg-type]
    consumer = StreamConsumer(
        Redis(), world.db, ENTRY_CONSUMER.group, ["-"], handler, processed_table=processed_events
    )
    [(_, won)] = await events(world.db, "pipeline.DealWon")
    assert "pipeline.DealWon" in ENTRY_CONSUMER.types
    applied = [await asyncio.wait_for(consumer._apply(won), 60) for _ in range(2)]
    assert applied == [True, False]

    async def cancelled() -> bool:
        return (await world.get("ap-won")).state == ap.APPROVAL_STATE_CANCELLED

    await world.until(cancelled)
    a = await world.get("ap-won")
    cancels = [x for x in a.history if x.type == ap.APPROVAL_ACTION_TYPE_CANCEL]
    assert [(x.actor_user_id, x.comment) for x in cancels] == [("system:pipeline", "the deal was won")]

    async def dropped() -> bool:
        return all([await _pending(world, u) == [] for u in ("gm-1", "legal-1", "fin-1")])

    await world.until(dropped)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.request("ap-after", "big")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "closed" in (err.value.details() or "")


async def test_an_approval_starting_as_the_deal_closes_is_cancelled_once_it_runs(world: World) -> None:
    """The race: an approval claimed (its start in flight) when the deal is won. The close's cancel does
    not miss it: while its workflow is not there yet the activity fails (Temporal retries it), and once it
    runs the cancel ends it. A claim after the close is refused."""
    from datetime import UTC, datetime

    from temporalio.exceptions import ApplicationError

    from kit.auth import Principal
    from kit.errors import FailedPrecondition
    from services.pipeline.approval_activities import cancel_for_lost_deal, start
    from services.pipeline.approval_workflows import LostDealInput
    from services.pipeline.store import transactions

    await world.flow(contract_flow())
    await world.deal("big")
    tx = transactions(world.db)
    rep = Principal("rep-a1", "demo", frozenset({"rep"}), "east/team-a", datetime(2100, 1, 1, tzinfo=UTC))
    request = ap.Approval(approval_id="ap-race", kind=ap.APPROVAL_KIND_CONTRACT, deal_id="big", title="race")
    async with tx.read("demo") as uow:
        run = await approvals.prepare(uow, rep, request, datetime.now(UTC))
    await tx.run("demo", lambda uow: approvals.claim(uow, run, datetime.now(UTC)))
    evidence = deal_pb2.DealEvidence(
        evidence_id="big-sc", evidence_type_id="signed_contract", attachment=AttachmentRef(uri="s3://c")
    )
    await world.call(
        "CreateDealEvidence", pb.CreateDealEvidenceRequest(deal_id="big", evidence=evidence), "rep-a1"
    )
    await world.call("MarkWon", pb.MarkWonRequest(deal_id="big"), "rep-a1")
    close = LostDealInput("demo", "big", "evt-race", "WON")
    with pytest.raises(ApplicationError):
        await cancel_for_lost_deal(world.env.client, tx, close)  # not started yet: retried later
    await start(world.env.client, world.queue, run, "rep-a1", settle=True)  # the start lands
    await cancel_for_lost_deal(world.env.client, tx, close)  # the retry
    a = await world.get("ap-race")
    assert a.state == ap.APPROVAL_STATE_CANCELLED
    assert [x.comment for x in a.history if x.type == ap.APPROVAL_ACTION_TYPE_CANCEL] == ["the deal was won"]
    other = approvals.d.Run(**{**run.__dict__, "approval_id": "ap-late", "flow_id": "other_flow"})
    with pytest.raises(FailedPrecondition) as err:
        await tx.run("demo", lambda uow: approvals.claim(uow, other, datetime.now(UTC)))
    assert err.value.reason == "DEAL_CLOSED"
