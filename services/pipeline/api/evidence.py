"""What a deal has for its gates: evidence and checklist ticks."""

from __future__ import annotations

from kit.grpc import context as call
from kit.resources import PageRequest, UnitOfWork, present_all, query_key
from salesops.pipeline.v1 import deal_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import evidence
from services.pipeline.api.base import ApiBase, Ctx
from services.pipeline.convert import bounded_lists, now
from services.pipeline.presenters import DEALS, EVIDENCE, DealView
from services.pipeline.repositories.deals import Deals
from services.pipeline.repositories.evidence import EvidenceItems


class EvidenceApi(ApiBase):
    async def CreateDealEvidence(
        self, request: pb.CreateDealEvidenceRequest, context: Ctx
    ) -> pb.CreateDealEvidenceResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> pb.CreateDealEvidenceResponse:
            stored, row = await evidence.add_evidence(uow, who, request.deal_id, request.evidence, now())
            return pb.CreateDealEvidenceResponse(
                evidence=EVIDENCE.present(who, stored), deal=DEALS.present(who, DealView(row))
            )

        return await self.write(who, work)

    async def ListDealEvidence(
        self, request: pb.ListDealEvidenceRequest, context: Ctx
    ) -> pb.ListDealEvidenceResponse:
        who = call.principal()
        bounded_lists(request)
        page = PageRequest.parse(request.page_size, request.page_token)
        types = sorted(request.evidence_type_ids)
        query = query_key("ListDealEvidence", request.deal_id, types)
        async with self.read(who) as uow:
            await Deals(uow).visible(who, request.deal_id)
            found = await EvidenceItems(uow).page(request.deal_id, types, page, query)
        return pb.ListDealEvidenceResponse(
            evidence=present_all(EVIDENCE, who, found.items), next_page_token=found.next_page_token
        )

    async def DeleteDealEvidence(
        self, request: pb.DeleteDealEvidenceRequest, context: Ctx
    ) -> pb.DeleteDealEvidenceResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> deal_pb2.Deal:
            row = await evidence.remove_evidence(uow, who, request.deal_id, request.evidence_id, now())
            return DEALS.present(who, DealView(row))

        return pb.DeleteDealEvidenceResponse(deal=await self.write(who, work))

    async def SetDealChecklistItem(
        self, request: pb.SetDealChecklistItemRequest, context: Ctx
    ) -> pb.SetDealChecklistItemResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> deal_pb2.Deal:
            row = await evidence.set_checklist_item(
                uow, who, request.deal_id, request.item_id, request.checked, request.note, request.etag, now()
            )
            return DEALS.present(who, DealView(row))

        return pb.SetDealChecklistItemResponse(deal=await self.write(who, work))
