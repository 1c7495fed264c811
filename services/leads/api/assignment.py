"""The pool and assignment: claim, release, (batch) assign, and the explanation of a lead's assignments."""

from __future__ import annotations

from kit.errors import InvalidArgument, NotFound, SalesopsError
from kit.grpc import context as call
from kit.grpc.errors import to_status_proto
from kit.resources import UnitOfWork
from salesops.leads.v1 import leads_service_pb2 as pb
from salesops.leads.v1 import routing_pb2
from services.leads import assignment, lead_views
from services.leads.api.base import ApiBase, Ctx
from services.leads.convert import now, parse
from services.leads.repositories.followups import DecisionRepository
from services.leads.repositories.leads import LeadRepository
from services.leads.store import LeadRow

MAX_BATCH = 500


class AssignmentApi(ApiBase):
    async def ClaimLead(self, request: pb.ClaimLeadRequest, context: Ctx) -> pb.ClaimLeadResponse:
        who = call.principal()

        async def claim(uow: UnitOfWork) -> LeadRow:
            row, _ = await assignment.claim(uow, who, request.lead_id, now())
            return row

        lead = await self.changed_lead(who, claim)
        return pb.ClaimLeadResponse(lead=lead, decision_id=lead.last_decision_id)  # the claim's decision

    async def ReleaseLead(self, request: pb.ReleaseLeadRequest, context: Ctx) -> pb.ReleaseLeadResponse:
        who, r = call.principal(), request
        lead = await self.changed_lead(
            who,
            lambda uow: assignment.release(
                uow, who, r.lead_id, now(), note=r.note, pool_id=r.pool_id, etag=r.etag
            ),
        )
        return pb.ReleaseLeadResponse(lead=lead)

    async def AssignLead(self, request: pb.AssignLeadRequest, context: Ctx) -> pb.AssignLeadResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> pb.AssignLeadResponse:
            row, decision = await assignment.assign(
                uow,
                who,
                request.lead_id,
                now(),
                assignee=request.assignee_user_id,
                reason=request.reason,
                override=request.override_capacity,
                etag=request.etag,
            )
            return pb.AssignLeadResponse(lead=await lead_views.present(uow, who, row), decision=decision)

        return await self.write(who, work)

    async def BatchAssignLeads(
        self, request: pb.BatchAssignLeadsRequest, context: Ctx
    ) -> pb.BatchAssignLeadsResponse:
        who = call.principal()
        if not 1 <= len(request.lead_ids) <= MAX_BATCH:
            raise InvalidArgument.field("lead_ids", "1 to 500 leads")
        out = pb.BatchAssignLeadsResponse()
        for lead_id in request.lead_ids:
            result = out.results.add(lead_id=lead_id)

            async def work(
                uow: UnitOfWork, lead_id: str = lead_id
            ) -> tuple[LeadRow, routing_pb2.AssignmentDecision]:
                return await assignment.assign(
                    uow,
                    who,
                    lead_id,
                    now(),
                    assignee=request.assignee_user_id,
                    reason=request.reason,
                    override=request.override_capacity,
                    etag="",
                )

            try:
                row, decision = await self.write(who, work)
            except SalesopsError as exc:
                result.error.CopyFrom(to_status_proto(exc, "leads"))
                continue
            result.owner_user_id, result.decision_id = row.owner_user_id or "", decision.decision_id
        return out

    async def ExplainLeadAssignment(
        self, request: pb.ExplainLeadAssignmentRequest, context: Ctx
    ) -> pb.ExplainLeadAssignmentResponse:
        who = call.principal()
        async with self.read(who) as uow:
            row = await LeadRepository(uow).visible(who, request.lead_id)
            rows = await DecisionRepository(uow).of_lead(row.lead_id)
        wanted = request.decision_id or row.last_decision_id
        first = [r for r in rows if r.decision_id == wanted]
        if wanted and not first:
            raise NotFound("assignment decision", wanted)
        ordered = first + ([r for r in rows if r.decision_id != wanted] if request.include_history else [])
        out = pb.ExplainLeadAssignmentResponse()
        for r in ordered:
            parse(r.body, out.decisions.add())
        return out
