"""MoveStage names the approvals its entry starts; MarkWon's won criteria read approvals as gates do."""

# ruff: noqa: F811  (the `world` fixture is imported from approval_world)
from __future__ import annotations

from types import SimpleNamespace

import grpc
import pytest

from salesops.pipeline.v1 import approval_pb2 as ap
from salesops.pipeline.v1 import deal_pb2, stage_model_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline.approval_activities import entry_handler
from services.pipeline.stage_models import DEFAULT
from tests.leads.helpers import events
from tests.pipeline.approval_world import World, contract_flow, world  # noqa: F401

pytestmark = pytest.mark.timeout(300)
FLOW = "contract_over_500k"


def model() -> stage_model_pb2.StageModel:
    """needs_confirmed starts the contract flow on entry; winning needs it APPROVED."""
    m = stage_model_pb2.StageModel()
    m.CopyFrom(DEFAULT)
    m.stages[1].entry_criteria.Clear()
    m.stages[1].on_entry_approval_flow_ids.append(FLOW)
    m.won_criteria.Clear()
    m.won_criteria.required_approval_flow_ids.append(FLOW)
    return m


async def test_move_names_the_started_approval_and_won_waits_for_it(world: World) -> None:
    await world.call("UpdateStageModel", pb.UpdateStageModelRequest(stage_model=model()))
    await world.flow(contract_flow())
    await world.deal("big")
    await world.deal("small", amount_minor=1_000_000)
    stage = DEFAULT.stages[1].stage_id
    big = await world.call("MoveStage", pb.MoveStageRequest(deal_id="big", to_stage_id=stage), "rep-a1")
    small = await world.call("MoveStage", pb.MoveStageRequest(deal_id="small", to_stage_id=stage), "rep-a1")
    assert list(small.started_approval_ids) == []  # under the trigger
    [started] = big.started_approval_ids

    rt = SimpleNamespace(
        db=world.db, temporal=world.env.client, settings=SimpleNamespace(task_queue=world.queue)
    )
    handle = entry_handler(rt)  # type: ignore[arg-type]
    for _, envelope in await events(world.db, "pipeline.DealStageChanged"):
        async with world.db.session("demo") as session:  # as the consumer runs it: its own transaction
            await handle(envelope, session)
            await session.commit()

    async def projected() -> bool:  # the consumer does not wait for the run's first projection
        found = await world.call("ListApprovals", pb.ListApprovalsRequest(), "admin")
        return bool(found.approvals)

    await world.until(projected)
    listed = await world.call("ListApprovals", pb.ListApprovalsRequest(), "admin")
    assert [a.approval_id for a in listed.approvals] == [started]  # the id the move answered

    won = pb.MarkWonRequest(deal_id="big", contract_number="C-1")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.call("MarkWon", won, "rep-a1")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "GATE_APPROVAL" in str(err.value.trailing_metadata())
    for user in ("legal-1", "legal-2", "fin-1", "fin-2", "fin-3", "gm-1"):
        await world.call("ApproveApprovalStep", pb.ApproveApprovalStepRequest(approval_id=started), user)
    assert (await world.get(started)).state == ap.APPROVAL_STATE_APPROVED
    done = (await world.call("MarkWon", won, "rep-a1")).deal
    assert done.status == deal_pb2.DEAL_STATUS_WON
