"""A gate's approval criterion applies only where the flow does: the demo stage model requires the
contract flow (500,000 and up) at contract approval; a 600,000 deal waits for legal, finance risk and
the GM, a 100,000 deal passes without it. On the time-skipping server, SQLite and PostgreSQL."""

# ruff: noqa: F811  (the `world` fixture is imported from approval_world)
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from redis.asyncio import Redis

from kit.events.consumer import StreamConsumer
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import approval_pb2 as ap
from salesops.pipeline.v1 import deal_pb2, settings_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import gate_flows, seed_approvals
from services.pipeline.approval_activities import ENTRY_CONSUMER, entry_handler
from services.pipeline.store import processed_events
from tests.leads.helpers import events
from tests.pipeline.approval_world import World, world  # noqa: F401
from tests.pipeline.conftest import token
from tests.pipeline.helpers import precondition, refused

pytestmark = pytest.mark.timeout(300)

GATED = "contract_approval"
APPROVERS = ("legal-1", "fin-1", "gm-1")  # one per step: the others of the roles are inactive here


def test_a_flow_applies_by_its_trigger() -> None:
    flow = seed_approvals.contract_flow().SerializeToString()
    discount = seed_approvals.discount_flow().SerializeToString()
    flows = {"contract": flow, "discount": discount}

    def deal(amount: int, discount_bps: int = 0) -> deal_pb2.Deal:
        return deal_pb2.Deal(amount=Money(amount_minor=amount, currency="CNY"), discount_bps=discount_bps)

    assert gate_flows.not_applicable(flows, deal(60_000_000)) == {"discount"}
    assert gate_flows.not_applicable(flows, deal(50_000_000, 1500)) == set()  # both at their threshold
    assert gate_flows.not_applicable(flows, deal(10_000_000, 500)) == {"contract", "discount"}


async def _demo_model(world: World) -> None:
    """The demo seed's wiring on a model whose earlier gates are cleared (this test is about one gate)."""
    model = (await world.call("GetStageModel", pb.GetStageModelRequest())).stage_model
    for stage in model.stages:
        stage.entry_criteria.Clear()
    await world.call("UpdateStageModel", pb.UpdateStageModelRequest(stage_model=model))
    admin = (("authorization", f"Bearer {token('admin')}"),)
    await seed_approvals.wire_stage_model(world.stub, admin)  # type: ignore[arg-type]
    for user in ("legal-2", "fin-2", "fin-3"):
        p = settings_pb2.MemberProfile(user_id=user, active=False)
        mask = pb.UpdateMemberProfileRequest(member_profile=p)
        mask.update_mask.paths.append("active")
        await world.call("UpdateMemberProfile", mask)


async def test_only_a_deal_the_contract_flow_applies_to_waits_for_its_three_approvers(world: World) -> None:
    await _demo_model(world)
    await world.flow(seed_approvals.contract_flow())
    await world.deal("big", amount_minor=60_000_000)
    await world.deal("small", amount_minor=10_000_000)
    for deal_id in ("big", "small"):
        await world.call(
            "MoveStage", pb.MoveStageRequest(deal_id=deal_id, to_stage_id="proposal_quote"), "rep-a1"
        )
    started = {
        deal_id: list(
            (
                await world.call(
                    "MoveStage", pb.MoveStageRequest(deal_id=deal_id, to_stage_id="negotiation"), "rep-a1"
                )
            ).started_approval_ids
        )
        for deal_id in ("big", "small")
    }
    assert len(started["big"]) == 1 and started["small"] == []
    [approval_id] = started["big"]

    # The small deal: the criterion does not apply (CheckGate says so), the move passes.
    check = pb.CheckGateRequest(deal_id="small", to_stage_id=GATED)
    [item] = [i for i in (await world.call("CheckGate", check, "rep-a1")).gate_review.items]
    assert (item.kind, item.key, item.satisfied) == (
        deal_pb2.GATE_ITEM_KIND_APPROVAL,
        seed_approvals.CONTRACT_FLOW,
        True,
    )
    assert item.detail.startswith("not applicable")
    moved = await world.call("MoveStage", pb.MoveStageRequest(deal_id="small", to_stage_id=GATED), "rep-a1")
    assert moved.deal.stage_id == GATED

    # The big deal: the entry consumer starts its approval (the real consumer path); the gate waits for it.
    rt = SimpleNamespace(
        db=world.db, temporal=world.env.client, settings=SimpleNamespace(task_queue=world.queue)
    )
    handler = entry_handler(rt)  # type: ignore[arg-type]
    consumer = StreamConsumer(
        Redis(), world.db, ENTRY_CONSUMER.group, ["-"], handler, processed_table=processed_events
    )
    for _, envelope in await events(world.db, "pipeline.DealStageChanged"):
        await asyncio.wait_for(consumer._apply(envelope), 60)

    async def queued(user: str) -> bool:
        mine = await world.call("ListMyPendingApprovals", pb.ListMyPendingApprovalsRequest(), user)
        return [i.approval.approval_id for i in mine.items] == [approval_id]

    for user in APPROVERS:
        await world.until(lambda user=user: queued(user))  # type: ignore[misc]

    async def held() -> list[tuple[str, str]]:
        move = pb.MoveStageRequest(deal_id="big", to_stage_id=GATED)
        return precondition(await refused(world.call("MoveStage", move, "rep-a1")))

    expected = [("GATE_APPROVAL", f"{GATED}/{seed_approvals.CONTRACT_FLOW}")]
    assert await held() == expected
    for n, user in enumerate(APPROVERS):
        await world.call("ApproveApprovalStep", pb.ApproveApprovalStepRequest(approval_id=approval_id), user)
        if n < len(APPROVERS) - 1:
            assert await held() == expected  # one, then two of three: still held
    assert (await world.get(approval_id)).state == ap.APPROVAL_STATE_APPROVED
    moved = await world.call("MoveStage", pb.MoveStageRequest(deal_id="big", to_stage_id=GATED), "rep-a1")
    assert moved.deal.stage_id == GATED
