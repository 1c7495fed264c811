"""The approval engine on Temporal's time-skipping server, through the real gRPC API.

The contract flow (legal, finance risk and the GM in parallel, all must approve) and its
variants: a rejection, a quorum of k of n, the reminder -> escalation -> fallback ladder,
delegation (one step and standing), return and resubmit with and without re-approval,
duplicates, refusals before history, withdraw and cancel.
"""

# ruff: noqa: F811  (the `world` fixture is imported from approval_world)
from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from temporalio.api.enums.v1 import EventType

from kit.events import unpack_payload
from salesops.common.v1.types_pb2 import AttachmentRef
from salesops.pipeline.v1 import approval_pb2 as ap
from salesops.pipeline.v1 import events_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline.approval_workflows import workflow_id
from tests.leads.helpers import events
from tests.pipeline.approval_world import World, actions, contract_flow, hours, states, world  # noqa: F401

pytestmark = pytest.mark.timeout(300)


async def approve(w: World, approval_id: str, user: str, client: str = "", **kw: object) -> ap.Approval:
    req = pb.ApproveApprovalStepRequest(approval_id=approval_id, **kw)  # type: ignore[arg-type]
    done: ap.Approval = (await w.call("ApproveApprovalStep", req, user, client=client)).approval
    return done


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
    queue = await world.call("ListMyPendingApprovals", pb.ListMyPendingApprovalsRequest(), "gm-1")
    item = queue.items[0]
    assert list(item.step_keys) == ["gm"] and queue.total_size == 1 and not item.escalated_or_delegated
    assert item.waiting_since_time == a.steps[2].activate_time  # its age runs from when the step opened
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
    listed = await world.call(
        "ListApprovals", pb.ListApprovalsRequest(filter=pb.ApprovalFilter(deal_id="big"))
    )
    assert [x.state for x in listed.approvals] == [ap.APPROVAL_STATE_APPROVED]
    done = await events(world.db, "pipeline.ApprovalCompleted")
    assert [unpack_payload(e, events_pb2.ApprovalCompleted).outcome for _, e in done] == [
        ap.APPROVAL_STATE_APPROVED
    ]
    waiting = await events(world.db, "pipeline.ApprovalStepWaiting")
    assert sorted(unpack_payload(e, events_pb2.ApprovalStepWaiting).step_key for _, e in waiting) == [
        "finance_risk",
        "gm",
        "legal",
    ]


async def test_one_rejection_rejects_the_approval_and_stops_the_other_steps(world: World) -> None:
    await world.flow(contract_flow())
    await world.deal("big")
    await world.request("ap-r", "big")
    await approve(world, "ap-r", "legal-1")
    no_reason = await refused(
        world, "RejectApprovalStep", pb.RejectApprovalStepRequest(approval_id="ap-r"), "gm-1"
    )
    assert no_reason.code() == grpc.StatusCode.INVALID_ARGUMENT
    req = pb.RejectApprovalStepRequest(approval_id="ap-r", comment="margin too thin")
    a = (await world.call("RejectApprovalStep", req, "gm-1")).approval
    assert a.state == ap.APPROVAL_STATE_REJECTED
    assert states(a) == {"legal": "CANCELLED", "finance_risk": "CANCELLED", "gm": "REJECTED"}
    assert await pending(world, "fin-1") == []
    late = await refused(
        world, "ApproveApprovalStep", pb.ApproveApprovalStepRequest(approval_id="ap-r"), "fin-1"
    )
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    done = await events(world.db, "pipeline.ApprovalCompleted")
    evt = unpack_payload(done[0][1], events_pb2.ApprovalCompleted)
    assert (evt.outcome, evt.decisive_step_key, evt.decided_by) == (ap.APPROVAL_STATE_REJECTED, "gm", "gm-1")


async def test_a_quorum_of_two_of_three_passes_on_the_second_approval(world: World) -> None:
    flow = contract_flow(finance_risk={"quorum": ap.STEP_QUORUM_COUNT, "required_approvals": 2})
    flow.steps[1].after_step_keys.append("legal")  # finance after legal: steps in sequence
    await world.flow(flow)
    await world.deal("big")
    a = await world.request("ap-q", "big")
    assert states(a)["finance_risk"] == "PENDING"
    await approve(world, "ap-q", "legal-1")
    a = await approve(world, "ap-q", "legal-2")
    assert states(a)["finance_risk"] == "ACTIVE" and a.steps[1].required_approvals == 2
    a = await approve(world, "ap-q", "fin-3")
    assert states(a)["finance_risk"] == "ACTIVE"
    a = await approve(world, "ap-q", "fin-1")
    assert states(a)["finance_risk"] == "APPROVED"
    assert await pending(world, "fin-2") == []  # the third is no longer asked


async def test_an_idle_step_is_reminded_at_24h_escalated_at_48h_and_falls_back_after_t3(world: World) -> None:
    idle = ap.IdlePolicy(
        remind_after=hours(24),
        escalate_after=hours(48),
        fallback_after=hours(72),
        fallback_action=ap.FALLBACK_ACTION_ASSIGN,
        fallback_user_ids=["cfo-1"],
        notify_channels=["sms", "wecom"],
    )
    await world.flow(contract_flow(idle=idle))
    await world.deal("big")
    a = await world.request("ap-i", "big")
    t0 = a.submit_time.ToDatetime().replace(tzinfo=None)
    await approve(world, "ap-i", "legal-1")
    await approve(world, "ap-i", "legal-2")
    await approve(world, "ap-i", "gm-1")

    async def idle_events() -> list[events_pb2.ApprovalStepIdle]:
        return [
            unpack_payload(e, events_pb2.ApprovalStepIdle)
            for _, e in await events(world.db, "pipeline.ApprovalStepIdle")
        ]

    start = await world.now()
    await world.skip_to(start + timedelta(hours=23, minutes=50))
    assert await idle_events() == []
    await world.skip_to(start + timedelta(hours=24, minutes=5))

    async def count(n: int) -> bool:
        return len(await idle_events()) >= n

    await world.until(lambda: count(1))
    first = (await idle_events())[0]
    assert (first.step_key, first.action, first.reminder_count) == (
        "finance_risk",
        events_pb2.IDLE_ACTION_REMIND,
        1,
    )
    assert sorted(first.approver_user_ids) == ["fin-1", "fin-2", "fin-3"] and list(first.notify_channels) == [
        "sms",
        "wecom",
    ]
    assert first.idle_duration.ToTimedelta() == timedelta(hours=24)
    await world.skip_to(start + timedelta(hours=48, minutes=5))
    await world.until(lambda: count(3))  # the repeat reminder at 48 h and the escalation
    escalation = next(e for e in await idle_events() if e.action == events_pb2.IDLE_ACTION_ESCALATE)
    assert list(escalation.escalate_to_user_ids) == ["cfo-1"]  # the approvers' manager
    assert escalation.idle_duration.ToTimedelta() == timedelta(hours=48)
    assert await pending(world, "cfo-1") == []  # escalation tells, it does not assign here
    await world.skip_to(start + timedelta(hours=72, minutes=5))

    async def assigned() -> bool:
        return await pending(world, "cfo-1") == ["ap-i"]

    await world.until(assigned)
    found = await world.call("ListMyPendingApprovals", pb.ListMyPendingApprovalsRequest(), "cfo-1")
    assert found.items[0].escalated_or_delegated and list(found.items[0].step_keys) == ["finance_risk"]
    a = await approve(world, "ap-i", "cfo-1")  # the fallback approver settles the step alone
    assert a.state == ap.APPROVAL_STATE_APPROVED
    kinds = [k for k, step, _ in actions(a) if step == "finance_risk" and k != "APPROVE"]
    assert kinds == ["REMIND", "REMIND", "ESCALATE", "REMIND", "FALLBACK"]
    assert t0 is not None


async def test_the_fallback_can_decide_automatically(world: World) -> None:
    idle = ap.IdlePolicy(fallback_after=hours(5), fallback_action=ap.FALLBACK_ACTION_AUTO_APPROVE)
    await world.flow(contract_flow(idle=idle))
    await world.deal("big")
    await world.request("ap-auto", "big")
    await world.skip_to(await world.now() + timedelta(hours=5, minutes=1))

    async def done() -> bool:
        return (await world.get("ap-auto")).state == ap.APPROVAL_STATE_APPROVED

    await world.until(done)
    assert ("FALLBACK", "gm", "system:pipeline") in actions(await world.get("ap-auto"))


async def test_delegating_a_step_hands_it_over_and_the_delegator_can_no_longer_act(world: World) -> None:
    flow = contract_flow(legal={"quorum": ap.STEP_QUORUM_ANY})
    await world.flow(flow)
    await world.deal("big")
    await world.request("ap-d", "big")
    req = pb.DelegateApprovalStepRequest(
        approval_id="ap-d", step_key="gm", delegate_user_id="cfo-1", comment="on leave"
    )
    a = (await world.call("DelegateApprovalStep", req, "gm-1")).approval
    gm = next(s for s in a.steps if s.step_key == "gm")
    assert list(gm.assignee_user_ids) == ["cfo-1"]
    assert await pending(world, "gm-1") == [] and await pending(world, "cfo-1") == ["ap-d"]
    gone = await refused(
        world, "ApproveApprovalStep", pb.ApproveApprovalStepRequest(approval_id="ap-d"), "gm-1"
    )
    assert gone.code() == grpc.StatusCode.PERMISSION_DENIED
    a = await approve(world, "ap-d", "cfo-1")
    assert states(a)["gm"] == "APPROVED"
    assert ("DELEGATE", "gm", "gm-1") in actions(a)


async def test_a_standing_delegation_during_leave_assigns_the_opening_step_to_the_delegate(
    world: World,
) -> None:
    now = await world.now()
    leave = ap.ApprovalDelegation(delegate_user_id="cfo-1", note="annual leave")
    leave.start_time.FromDatetime(now - timedelta(days=1))
    leave.end_time.FromDatetime(now + timedelta(days=7))
    made = await world.call(
        "CreateApprovalDelegation", pb.CreateApprovalDelegationRequest(approval_delegation=leave), "gm-1"
    )
    assert made.approval_delegation.user_id == "gm-1"
    # Nobody records a leave for someone else but an admin.
    other = ap.ApprovalDelegation(
        user_id="legal-1", delegate_user_id="cfo-1", start_time=leave.start_time, end_time=leave.end_time
    )
    denied = await refused(
        world,
        "CreateApprovalDelegation",
        pb.CreateApprovalDelegationRequest(approval_delegation=other),
        "gm-1",
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    await world.flow(contract_flow())
    await world.deal("big")
    a = await world.request("ap-s", "big")
    gm = next(s for s in a.steps if s.step_key == "gm")
    assert list(gm.assignee_user_ids) == ["cfo-1"]
    assert await pending(world, "gm-1") == []
    found = await world.call("ListMyPendingApprovals", pb.ListMyPendingApprovalsRequest(), "cfo-1")
    assert found.items[0].escalated_or_delegated
    a = await approve(world, "ap-s", "cfo-1")
    assert states(a)["gm"] == "APPROVED"
    listed = await world.call("ListApprovalDelegations", pb.ListApprovalDelegationsRequest(), "cfo-1")
    assert [x.user_id for x in listed.approval_delegations] == ["gm-1"]
    # Back from leave (the range is over): a step opening now is the GM's own again.
    await world.skip_to(now + timedelta(days=7, hours=1))
    await world.deal("big-2")
    a = await world.request("ap-s2", "big-2")
    assert list(next(s for s in a.steps if s.step_key == "gm").assignee_user_ids) == ["gm-1"]
    assert await pending(world, "gm-1") == ["ap-s2"]


async def _returned(world: World, flow: ap.ApprovalFlow, approval_id: str) -> None:
    await world.flow(flow)
    await world.deal("big")
    await world.request(approval_id, "big", summary="first offer")
    for user in ("fin-1", "fin-2", "fin-3", "gm-1"):
        await approve(world, approval_id, user)
    req = pb.ReturnApprovalStepRequest(
        approval_id=approval_id, step_key="legal", comment="fix the liability cap"
    )
    a = (await world.call("ReturnApprovalStep", req, "legal-1")).approval
    assert a.state == ap.APPROVAL_STATE_RETURNED and states(a)["legal"] == "RETURNED"
    returned = await events(world.db, "pipeline.ApprovalReturned")
    assert unpack_payload(returned[0][1], events_pb2.ApprovalReturned).comment == "fix the liability cap"


def _keeping_flow() -> ap.ApprovalFlow:
    keep = {"on_resubmit": ap.RESUBMIT_POLICY_KEEP_UNLESS_CONCERNED, "concern_fields": ["amount"]}
    return contract_flow(finance_risk=keep, gm=keep)


async def test_a_resubmission_outside_a_steps_concern_keeps_its_approval(world: World) -> None:
    await _returned(world, _keeping_flow(), "ap-k")
    not_requester = await refused(
        world, "ResubmitApproval", pb.ResubmitApprovalRequest(approval_id="ap-k"), "admin"
    )
    assert not_requester.code() == grpc.StatusCode.PERMISSION_DENIED
    changes = ap.Approval(summary="liability capped at the contract value")
    req = pb.ResubmitApprovalRequest(approval_id="ap-k", approval=changes, comment="capped")
    req.update_mask.paths.append("summary")
    a = (await world.call("ResubmitApproval", req, "rep-a1")).approval
    assert a.revision == 2 and a.state == ap.APPROVAL_STATE_IN_PROGRESS
    assert states(a) == {"legal": "ACTIVE", "finance_risk": "APPROVED", "gm": "APPROVED"}
    await approve(world, "ap-k", "legal-1")
    a = await approve(world, "ap-k", "legal-2")
    assert a.state == ap.APPROVAL_STATE_APPROVED


async def test_a_resubmission_inside_a_steps_concern_or_restarting_all_decides_again(world: World) -> None:
    await _returned(world, _keeping_flow(), "ap-n")
    changes = ap.Approval(amount=ap.Approval().amount)
    changes.amount.amount_minor, changes.amount.currency = 70_000_000, "CNY"
    req = pb.ResubmitApprovalRequest(approval_id="ap-n", approval=changes, comment="price up")
    req.update_mask.paths.append("amount")
    a = (await world.call("ResubmitApproval", req, "rep-a1")).approval
    assert states(a) == {"legal": "ACTIVE", "finance_risk": "ACTIVE", "gm": "ACTIVE"}
    assert a.amount.amount_minor == 70_000_000
    assert await pending(world, "fin-1") == ["ap-n"]


async def test_restart_all_makes_every_step_decide_again(world: World) -> None:
    await _returned(world, _keeping_flow(), "ap-all")
    req = pb.ResubmitApprovalRequest(approval_id="ap-all", restart_all=True, comment="start over")
    a = (await world.call("ResubmitApproval", req, "rep-a1")).approval
    assert set(states(a).values()) == {"ACTIVE"}


async def test_a_duplicate_approve_is_a_no_op_and_refusals_never_enter_history(world: World) -> None:
    await world.flow(contract_flow())
    await world.deal("big")
    a = await world.request("ap-x", "big")
    first = await approve(world, "ap-x", "legal-1", action_id="act-1")
    again = await approve(world, "ap-x", "legal-1", action_id="act-1")
    other_id = await approve(world, "ap-x", "legal-1", action_id="act-2")
    assert first.etag == again.etag == other_id.etag != a.etag
    assert [x for x in actions(other_id) if x[0] == "APPROVE"] == [("APPROVE", "legal", "legal-1")]
    assert next(s for s in other_id.steps if s.step_key == "legal").approval_count == 1

    wrong = await refused(
        world,
        "ApproveApprovalStep",
        pb.ApproveApprovalStepRequest(approval_id="ap-x", step_key="gm"),
        "fin-1",
    )
    assert wrong.code() == grpc.StatusCode.PERMISSION_DENIED
    stale = await refused(
        world, "ApproveApprovalStep", pb.ApproveApprovalStepRequest(approval_id="ap-x", etag=a.etag), "gm-1"
    )
    assert stale.code() == grpc.StatusCode.ABORTED
    outsider = await refused(world, "GetApproval", pb.GetApprovalRequest(approval_id="ap-x"), "rep-b1")
    assert outsider.code() == grpc.StatusCode.NOT_FOUND
    other_tenant = await refused_in(world, "acme")
    assert other_tenant.code() == grpc.StatusCode.NOT_FOUND

    history = await world.env.client.get_workflow_handle(workflow_id("demo", "ap-x")).fetch_history()
    accepted = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    assert accepted.count("approve") == 2  # act-1 and act-2 (a no-op); the refused ones never entered
    a = await approve(world, "ap-x", "gm-1", etag=other_id.etag)
    assert states(a)["gm"] == "APPROVED"


async def refused_in(world: World, tenant: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.call("GetApproval", pb.GetApprovalRequest(approval_id="ap-x"), "admin", tenant=tenant)
    return err.value


async def test_the_requester_withdraws_and_an_admin_cancels(world: World) -> None:
    await world.flow(contract_flow())
    await world.deal("big")
    await world.deal("big-2")
    await world.request("ap-w", "big")
    await world.request("ap-c", "big-2")
    denied = await refused(world, "CancelApproval", pb.CancelApprovalRequest(approval_id="ap-w"), "legal-1")
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    a = (
        await world.call(
            "CancelApproval",
            pb.CancelApprovalRequest(approval_id="ap-w", reason="deal restructured"),
            "rep-a1",
        )
    ).approval
    assert a.state == ap.APPROVAL_STATE_CANCELLED and actions(a)[-1] == ("WITHDRAW", "", "rep-a1")
    a = (
        await world.call(
            "CancelApproval", pb.CancelApprovalRequest(approval_id="ap-c", reason="duplicate"), "admin"
        )
    ).approval
    assert a.state == ap.APPROVAL_STATE_CANCELLED and actions(a)[-1] == ("CANCEL", "", "admin")
    assert await pending(world, "gm-1") == []
    twice = await refused(world, "CancelApproval", pb.CancelApprovalRequest(approval_id="ap-c"), "admin")
    assert twice.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_create_approval_is_idempotent_on_its_id_and_one_flow_runs_once_per_deal(world: World) -> None:
    await world.flow(contract_flow())
    await world.deal("big")
    await world.deal("small", amount_minor=1_000_000)
    draft = AttachmentRef(uri="s3://contracts/big.pdf", file_name="big.pdf")
    first = await world.request("ap-1", "big", attachments=[draft])
    again = await world.request("ap-1", "big", attachments=[draft])
    assert again.etag == first.etag and list(again.attachments) == [draft]
    twice = await refused(
        world,
        "CreateApproval",
        pb.CreateApprovalRequest(
            approval=ap.Approval(approval_id="ap-2", kind=ap.APPROVAL_KIND_CONTRACT, deal_id="big", title="x")
        ),
        "rep-a1",
    )
    assert twice.code() == grpc.StatusCode.ALREADY_EXISTS
    # Under the 500,000 trigger no contract flow matches.
    none = await refused(
        world,
        "CreateApproval",
        pb.CreateApprovalRequest(
            approval=ap.Approval(
                approval_id="ap-3", kind=ap.APPROVAL_KIND_CONTRACT, deal_id="small", title="x"
            )
        ),
        "rep-a1",
    )
    assert none.code() == grpc.StatusCode.FAILED_PRECONDITION
    # A deal the caller cannot see cannot be put up for approval.
    hidden = await refused(
        world,
        "CreateApproval",
        pb.CreateApprovalRequest(
            approval=ap.Approval(approval_id="ap-4", kind=ap.APPROVAL_KIND_CONTRACT, deal_id="big", title="x")
        ),
        "rep-b1",
    )
    assert hidden.code() == grpc.StatusCode.NOT_FOUND
