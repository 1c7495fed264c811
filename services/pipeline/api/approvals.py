"""Approval flows, approvals and standing delegations: proto <-> use case; the workflow does the deciding."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from sqlalchemy import ColumnElement
from ulid import ULID

from kit.auth import Principal
from kit.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from kit.grpc import context as call
from kit.resources import PageRequest, UnitOfWork, query_key
from salesops.pipeline.v1 import approval_pb2 as ap
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import access, approval_flows, approvals
from services.pipeline.api.base import ApiBase, Ctx
from services.pipeline.approval_activities import act, start, state
from services.pipeline.approval_openings import first_openings
from services.pipeline.approval_workflows import ActionInput
from services.pipeline.convert import enum_name, from_ts, now, ts
from services.pipeline.domain import approvals as d
from services.pipeline.repositories.approvals import ApprovalDelegations, ApprovalFlows, Approvals
from services.pipeline.store_approvals import ApprovalDelegationRow, ApprovalRow


def _client(context: Ctx) -> str:
    """Which client an action came from (kept in the audit trail)."""
    md = dict(context.invocation_metadata() or ())
    return str(md.get("x-salesops-client") or md.get("user-agent") or "")[:200]


def _form(values: Any) -> dict[str, str]:
    return {k: json.dumps(v, sort_keys=True) for k, v in json_format.MessageToDict(values).items()}


def _delegation(row: ApprovalDelegationRow) -> ap.ApprovalDelegation:
    out = ap.ApprovalDelegation(
        delegation_id=row.delegation_id,
        user_id=row.user_id,
        delegate_user_id=row.delegate_user_id,
        start_time=ts(row.start_time),
        end_time=ts(row.end_time),
        note=row.note,
    )
    out.audit.create_time.CopyFrom(ts(row.created_at))
    out.audit.created_by = row.created_by
    return out


class ApprovalsApi(ApiBase):
    # ------------------------------------------------------------ flows (admin)

    async def CreateApprovalFlow(
        self, request: pb.CreateApprovalFlowRequest, context: Ctx
    ) -> pb.CreateApprovalFlowResponse:
        who = call.principal()
        flow = await self.write(
            who,
            lambda uow: approval_flows.create(uow, who, request.approval_flow, request.validate_only, now()),
        )
        return pb.CreateApprovalFlowResponse(approval_flow=flow)

    async def GetApprovalFlow(
        self, request: pb.GetApprovalFlowRequest, context: Ctx
    ) -> pb.GetApprovalFlowResponse:
        who = call.principal()
        async with self.read(who) as uow:
            flow = await approval_flows.get(uow, who, request.flow_id, request.version)
        return pb.GetApprovalFlowResponse(approval_flow=flow)

    async def ListApprovalFlows(
        self, request: pb.ListApprovalFlowsRequest, context: Ctx
    ) -> pb.ListApprovalFlowsResponse:
        who = call.principal()
        page = PageRequest.parse(request.page_size, request.page_token)
        kind = enum_name(ap.ApprovalKind, request.kind)
        query = query_key("ListApprovalFlows", kind, request.include_disabled)
        async with self.read(who) as uow:
            found = await ApprovalFlows(uow).page(kind, request.include_disabled, page, query)
        return pb.ListApprovalFlowsResponse(
            approval_flows=[approval_flows.document(r) for r in found.items],
            next_page_token=found.next_page_token,
        )

    async def UpdateApprovalFlow(
        self, request: pb.UpdateApprovalFlowRequest, context: Ctx
    ) -> pb.UpdateApprovalFlowResponse:
        who = call.principal()
        flow = await self.write(
            who,
            lambda uow: approval_flows.update(
                uow, who, request.approval_flow, request.update_mask, request.validate_only, now()
            ),
        )
        return pb.UpdateApprovalFlowResponse(approval_flow=flow)

    # ------------------------------------------------------------ approvals

    async def CreateApproval(
        self, request: pb.CreateApprovalRequest, context: Ctx
    ) -> pb.CreateApprovalResponse:
        who = call.principal()
        async with self.read(who) as uow:
            run = await approvals.prepare(uow, who, request.approval, now())
            first = await first_openings(uow, run, now())  # the workflow starts with its first steps open
        if run.deal_id:  # one of concurrent requests for a deal and flow starts (no deal: nothing to claim)
            await self.write(who, lambda uow: approvals.claim(uow, run, now()))
        await start(self.rt.temporal, self.rt.settings.task_queue, run, _client(context), first=first)
        started = await self._settled(who, run.approval_id)
        if (
            started.requester_user_id != who.user_id
            or started.flow_id != run.flow_id
            or started.deal_id != run.deal_id
        ):
            raise AlreadyExists(approvals.RESOURCE, run.approval_id)
        return pb.CreateApprovalResponse(approval=started)

    async def _settled(self, who: Principal, approval_id: str) -> ap.Approval:
        """The approval as the workflow settled it: a start or an action answers once the record activity
        wrote the projection (the same document), so this read sees the change. No query to the workflow:
        one on a finished workflow replays its whole history (the slowest part of a last approve)."""
        async with self.read(who) as uow:
            body = await Approvals(uow).body(approval_id)
        if body is not None:
            return ap.Approval.FromString(body)
        return approvals.document(await state(self.rt.temporal, who.tenant, approval_id))  # never projected

    async def _live(self, who: Principal, approval_id: str) -> tuple[ApprovalRow, d.Run | None]:
        async with self.read(who) as uow:
            row = await approvals.visible(uow, who, approval_id)
        try:
            return row, await state(self.rt.temporal, who.tenant, approval_id)
        except NotFound:
            return row, None

    async def GetApproval(self, request: pb.GetApprovalRequest, context: Ctx) -> pb.GetApprovalResponse:
        who = call.principal()
        row, run = await self._live(who, request.approval_id)
        doc = approvals.document(run) if run is not None else ap.Approval.FromString(row.body)
        return pb.GetApprovalResponse(approval=doc)

    async def ListApprovals(self, request: pb.ListApprovalsRequest, context: Ctx) -> pb.ListApprovalsResponse:
        who = call.principal()
        f = request.filter
        if request.order_by not in ("", "submit_time desc", "submit_time"):
            raise InvalidArgument.field("order_by", '"submit_time desc" or "submit_time"')
        where: list[ColumnElement[bool]] = []
        if f.deal_id:
            where.append(ApprovalRow.deal_id == f.deal_id)
        if f.kinds:
            where.append(ApprovalRow.kind.in_([enum_name(ap.ApprovalKind, k) for k in f.kinds]))
        if f.states:
            where.append(ApprovalRow.state.in_([enum_name(ap.ApprovalState, s) for s in f.states]))
        if f.flow_id:
            where.append(ApprovalRow.flow_id == f.flow_id)
        if f.requester_user_id:
            where.append(ApprovalRow.requester_user_id == f.requester_user_id)
        if (t := from_ts(f.submit_time_from, "filter.submit_time_from")) is not None:
            where.append(ApprovalRow.submit_time >= t)
        if (t := from_ts(f.submit_time_to, "filter.submit_time_to")) is not None:
            where.append(ApprovalRow.submit_time < t)
        page = PageRequest.parse(request.page_size, request.page_token)
        query = query_key(
            "ListApprovals", who.user_id, f.SerializeToString(deterministic=True).hex(), request.order_by
        )
        async with self.read(who) as uow:
            found = await Approvals(uow).page(
                who, where, f.assignee_user_id, request.order_by == "submit_time", page, query
            )
        return pb.ListApprovalsResponse(
            approvals=[ap.Approval.FromString(r.body) for r in found.items],
            next_page_token=found.next_page_token,
            total_size=found.total_size or 0,
        )

    async def ListMyPendingApprovals(
        self, request: pb.ListMyPendingApprovalsRequest, context: Ctx
    ) -> pb.ListMyPendingApprovalsResponse:
        who = call.principal()
        kind = enum_name(ap.ApprovalKind, request.kind)
        page = PageRequest.parse(request.page_size, request.page_token)
        query = query_key("ListMyPendingApprovals", who.user_id, kind)
        items = []
        async with self.read(who) as uow:
            repo = Approvals(uow)
            found = await repo.pending_for(who.user_id, kind, page, query)
            assigned = await repo.active_assignments([r.approval_id for r in found.items], who.user_id)
            for r in found.items:
                mine = assigned[r.approval_id]
                item = pb.PendingApprovalItem(
                    approval=ap.Approval.FromString(r.body),
                    step_keys=sorted(a.step_key for a in mine),
                    waiting_since_time=ts(min(a.since for a in mine)),
                    escalated_or_delegated=any(a.indirect for a in mine),
                )
                dues = [a.due_time for a in mine if a.due_time is not None]
                if dues:
                    item.due_time.CopyFrom(ts(min(dues)))
                items.append(item)
        return pb.ListMyPendingApprovalsResponse(
            items=items, next_page_token=found.next_page_token, total_size=found.total_size or 0
        )

    async def _act(self, context: Ctx, approval_id: str, update: str, inp: ActionInput) -> ap.Approval:
        who = call.principal()
        if not approval_id:
            raise InvalidArgument.field("approval_id", "required")
        async with self.read(who) as uow:
            await approvals.require_visible(uow, who, approval_id)
        inp.actor, inp.client, inp.is_admin = who.user_id, _client(context), who.is_admin
        await act(self.rt.temporal, who.tenant, approval_id, update, inp)
        return await self._settled(who, approval_id)

    async def ApproveApprovalStep(
        self, request: pb.ApproveApprovalStepRequest, context: Ctx
    ) -> pb.ApproveApprovalStepResponse:
        inp = ActionInput(
            "", request.action_id, request.step_key, request.comment, _form(request.form_values), request.etag
        )
        return pb.ApproveApprovalStepResponse(
            approval=await self._act(context, request.approval_id, "approve", inp)
        )

    async def RejectApprovalStep(
        self, request: pb.RejectApprovalStepRequest, context: Ctx
    ) -> pb.RejectApprovalStepResponse:
        if not request.comment.strip():
            raise InvalidArgument.field("comment", "a reason is required")
        inp = ActionInput("", request.action_id, request.step_key, request.comment, etag=request.etag)
        return pb.RejectApprovalStepResponse(
            approval=await self._act(context, request.approval_id, "reject", inp)
        )

    async def ReturnApprovalStep(
        self, request: pb.ReturnApprovalStepRequest, context: Ctx
    ) -> pb.ReturnApprovalStepResponse:
        if not request.comment.strip():
            raise InvalidArgument.field("comment", "say what must change")
        inp = ActionInput("", request.action_id, request.step_key, request.comment, etag=request.etag)
        approval = await self._act(context, request.approval_id, "return_for_changes", inp)
        return pb.ReturnApprovalStepResponse(approval=approval)

    async def DelegateApprovalStep(
        self, request: pb.DelegateApprovalStepRequest, context: Ctx
    ) -> pb.DelegateApprovalStepResponse:
        if not request.delegate_user_id:
            raise InvalidArgument.field("delegate_user_id", "required")
        inp = ActionInput(
            "",
            request.action_id,
            request.step_key,
            request.comment,
            etag=request.etag,
            delegate_to=request.delegate_user_id,
        )
        approval = await self._act(context, request.approval_id, "delegate", inp)
        return pb.DelegateApprovalStepResponse(approval=approval)

    async def ResubmitApproval(
        self, request: pb.ResubmitApprovalRequest, context: Ctx
    ) -> pb.ResubmitApprovalResponse:
        who = call.principal()
        await self._live(who, request.approval_id)
        run = await state(self.rt.temporal, who.tenant, request.approval_id)
        paths = list(request.update_mask.paths)
        facts = approvals.resubmitted_facts(run, request.approval, paths) if paths else None
        inp = ActionInput(
            "",
            request.action_id,
            comment=request.comment,
            etag=request.etag,
            facts=facts,
            restart_all=request.restart_all,
        )
        approval = await self._act(context, request.approval_id, "resubmit", inp)
        return pb.ResubmitApprovalResponse(approval=approval)

    async def CancelApproval(
        self, request: pb.CancelApprovalRequest, context: Ctx
    ) -> pb.CancelApprovalResponse:
        inp = ActionInput("", request.action_id, comment=request.reason, etag=request.etag)
        return pb.CancelApprovalResponse(
            approval=await self._act(context, request.approval_id, "cancel", inp)
        )

    # ------------------------------------------------------------ standing delegations

    async def CreateApprovalDelegation(
        self, request: pb.CreateApprovalDelegationRequest, context: Ctx
    ) -> pb.CreateApprovalDelegationResponse:
        who = call.principal()
        dl = request.approval_delegation
        user = dl.user_id or who.user_id
        if user != who.user_id and not access.sees_all(who):
            raise PermissionDenied("only admins record a delegation for someone else", reason="ADMIN_ONLY")
        start_at = from_ts(dl.start_time, "approval_delegation.start_time")
        end_at = from_ts(dl.end_time, "approval_delegation.end_time")
        if not dl.delegate_user_id or dl.delegate_user_id == user:
            raise InvalidArgument.field("approval_delegation.delegate_user_id", "another user")
        if start_at is None or end_at is None or end_at <= start_at:
            raise InvalidArgument.field("approval_delegation.end_time", "after start_time (both required)")

        async def work(uow: UnitOfWork) -> ap.ApprovalDelegation:
            row = ApprovalDelegationRow(
                tenant_id=uow.tenant,
                delegation_id=str(ULID()),
                user_id=user,
                delegate_user_id=dl.delegate_user_id,
                start_time=start_at,
                end_time=end_at,
                note=dl.note[:500],
                created_at=now(),
                created_by=who.user_id,
            )
            await ApprovalDelegations(uow).add(row)
            return _delegation(row)

        return pb.CreateApprovalDelegationResponse(approval_delegation=await self.write(who, work))

    async def ListApprovalDelegations(
        self, request: pb.ListApprovalDelegationsRequest, context: Ctx
    ) -> pb.ListApprovalDelegationsResponse:
        who = call.principal()
        page = PageRequest.parse(request.page_size, request.page_token)
        query = query_key("ListApprovalDelegations", who.user_id, request.user_id)
        async with self.read(who) as uow:
            found = await ApprovalDelegations(uow).page(who, request.user_id, page, query)
        return pb.ListApprovalDelegationsResponse(
            approval_delegations=[_delegation(r) for r in found.items], next_page_token=found.next_page_token
        )
