"""The approval engine on Temporal's time-skipping server, through the real gRPC API.

The contract flow (legal, finance risk and the GM in parallel, all must approve) and its
variants: a rejection, a quorum of k of n, the reminder -> escalation -> fallback ladder,
delegation (one step and standing), return and resubmit with and without re-approval,
duplicates, refusals before history, withdraw and cancel.
"""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from temporalio.api.enums.v1 import EventType

from kit.events import unpack_payload
from salesops.pipeline.v1 import approval_pb2 as ap
from salesops.pipeline.v1 import events_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline.approval_workflows import workflow_id
from tests.leads.helpers import events
from tests.pipeline.approval_world import World, actions, contract_flow, hours, states, world  # noqa: F401

pytestmark = pytest.mark.timeout(300)


async def approve(w: World, approval_id: str, user: str, client: str = "", **kw: object) -> ap.Approval:
    req = pb.ApproveApprovalStepRequest(approval_id=approval_id, **kw)  # type: ignore[arg-type]
    return (await w.call("ApproveApprovalStep", req, user, client=client)).approval


async def refused(w: World, method: str, req: object, user: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await w.call(method, req, user)
    return err.value


async def pending(w: World, user: str) -> list[str]:
    found = await w.call("ListMyPendingApprovals", pb.ListMyPendingApprovalsRequest(), user)
    return [i.approval.approval_id for i in found.items]


async def test_the_contract_flow_passes_when_legal_finance_and_the_gm_all_approve(world: World) -> None:
    await world.flow(contract_flow())
    await world.deal("big")
    a = await world.request("ap-1", "big")
    assert a.flow_id == "contract_over_500k" and a.flow_version == 1
    assert states(a) == {"legal": "ACTIVE", "finance_risk": "ACTIVE", "gm": "ACTIVE"}
    # ALL over the role's members: both legal approvers must approve their step.
    assert {s.step_key: s.required_approvals for s in a.steps} == {"legal": 2, "finance_risk": 3, "gm": 1}
    for user in ("legal-1", "legal-2", "fin-1", "gm-1"):
        assert await pending(world, user) == ["ap-1"]
    for user in ("legal-1", "legal-2", "fin-1", "fin-2"):
        a = await approve(world, "ap-1", user, client="t")
    assert a.state == ap.APPROVAL_STATE_IN_PROGRESS
    assert await pending(world, "legal-1") == []
    a = await approve(world, "ap-1", "fin-3")
    a = await approve(world, "ap-1", "gm-1", comment="fine")
    assert a.state == ap.APPROVAL_STATE_APPROVED
    assert set(states(a).values()) == {"APPROVED"}
    assert await pending(world, "gm-1") == []
    assert ("APPROVE", "legal", "legal-1") in actions(a)
    assert next(x for x in a.history if x.actor_user_id == "legal-1").client == "t"
    listed = await world.call("ListApprovals", pb.ListApprovalsRequest(filter=pb.ApprovalFilter(deal_id="big")))
    assert [x.state for x in listed.approvals] == [ap.APPROVAL_STATE_APPROVED]
    done = await events(world.db, "pipeline.ApprovalCompleted")
    assert [unpack_payload(e, events_pb2.ApprovalCompleted).outcome for _, e in done] == [ap.APPROVAL_STATE_APPROVED]
    waiting = await events(world.db, "pipeline.ApprovalStepWaiting")
    assert sorted(unpack_payload(e, events_pb2.ApprovalStepWaiting).step_key for _, e in waiting) == [
        "finance_risk",
        "gm",
        "legal",
    ]
