"""Approval flows over gRPC: admins write (validated, versioned, etag), members read, other tenants see nothing."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped]

from kit.grpc.errors import status_from_error
from salesops.pipeline.v1 import approval_pb2 as ap
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from tests.pipeline.approval_world import contract_flow
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import mask


async def _error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value


def _violations(err: grpc.aio.AioRpcError) -> list[str]:
    bad = error_details_pb2.BadRequest()
    status = status_from_error(err)
    next(d for d in status.details if d.Is(bad.DESCRIPTOR)).Unpack(bad)
    return [v.field for v in bad.field_violations]


async def test_admins_create_and_version_flows_members_read_them(pipeline: Pipeline) -> None:
    flow = contract_flow()
    denied = await _error(
        pipeline.call("CreateApprovalFlow", pb.CreateApprovalFlowRequest(approval_flow=flow), "rep-a1")
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    made = (
        await pipeline.call("CreateApprovalFlow", pb.CreateApprovalFlowRequest(approval_flow=flow))
    ).approval_flow
    assert (made.version, made.etag, made.audit.created_by) == (1, '"1"', "admin")
    again = (
        await pipeline.call("CreateApprovalFlow", pb.CreateApprovalFlowRequest(approval_flow=flow))
    ).approval_flow
    assert again == made  # the same definition again is the same flow
    other = ap.ApprovalFlow()
    other.CopyFrom(flow)
    other.display_name = "something else"
    clash = await _error(
        pipeline.call("CreateApprovalFlow", pb.CreateApprovalFlowRequest(approval_flow=other))
    )
    assert clash.code() == grpc.StatusCode.ALREADY_EXISTS

    change = ap.ApprovalFlow(flow_id=flow.flow_id, priority=5, etag=made.etag)
    v2 = (
        await pipeline.call(
            "UpdateApprovalFlow",
            pb.UpdateApprovalFlowRequest(approval_flow=change, update_mask=mask("priority")),
        )
    ).approval_flow
    assert (v2.version, v2.priority, len(v2.steps)) == (2, 5, 3)
    stale = await _error(
        pipeline.call(
            "UpdateApprovalFlow",
            pb.UpdateApprovalFlowRequest(approval_flow=change, update_mask=mask("priority")),
        )
    )
    assert stale.code() == grpc.StatusCode.ABORTED
    v1 = (
        await pipeline.call(
            "GetApprovalFlow", pb.GetApprovalFlowRequest(flow_id=flow.flow_id, version=1), "rep-a1"
        )
    ).approval_flow
    assert (v1.version, v1.priority) == (1, 0)
    current = (
        await pipeline.call("GetApprovalFlow", pb.GetApprovalFlowRequest(flow_id=flow.flow_id), "rep-a1")
    ).approval_flow
    assert current.version == 2
    listed = await pipeline.call("ListApprovalFlows", pb.ListApprovalFlowsRequest(), "rep-a1")
    assert [(f.flow_id, f.version) for f in listed.approval_flows] == [(flow.flow_id, 2)]
    elsewhere = await _error(
        pipeline.call("GetApprovalFlow", pb.GetApprovalFlowRequest(flow_id=flow.flow_id), tenant="acme")
    )
    assert elsewhere.code() == grpc.StatusCode.NOT_FOUND


async def test_a_bad_flow_is_refused_with_every_problem(pipeline: Pipeline) -> None:
    flow = contract_flow("Bad Id")
    flow.steps[1].step_key = "legal"  # repeated
    flow.steps[2].after_step_keys.append("nowhere")
    flow.steps[2].approvers.ClearField("role_key")
    flow.idle_policy.fallback_action = ap.FALLBACK_ACTION_ASSIGN  # no T3, no fallback users
    flow.steps[0].concern_fields.append("colour")
    err = await _error(pipeline.call("CreateApprovalFlow", pb.CreateApprovalFlowRequest(approval_flow=flow)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = _violations(err)
    for expected in (
        "approval_flow.flow_id",
        "approval_flow.steps[2].approvers.role_key",
        "approval_flow.idle_policy.fallback_after",
        "approval_flow.idle_policy.fallback_user_ids",
        "approval_flow.steps[0].concern_fields[0]",
        "approval_flow.steps",
    ):
        assert expected in fields, (expected, fields)
    cycle = contract_flow("cyclic")
    cycle.steps[0].after_step_keys.append("gm")
    cycle.steps[2].after_step_keys.append("legal")
    err = await _error(pipeline.call("CreateApprovalFlow", pb.CreateApprovalFlowRequest(approval_flow=cycle)))
    assert "cycle" in (err.details() or "")
    nothing = await pipeline.call("ListApprovalFlows", pb.ListApprovalFlowsRequest())
    assert list(nothing.approval_flows) == []
