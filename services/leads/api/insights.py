"""Manager views: metrics, the supervisor board, dormant leads."""

from __future__ import annotations

from kit.errors import PermissionDenied
from kit.grpc import context as call
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads import access, insights
from services.leads.api.base import ApiBase, Ctx
from services.leads.convert import now


class InsightsApi(ApiBase):
    async def GetLeadMetrics(
        self, request: pb.GetLeadMetricsRequest, context: Ctx
    ) -> pb.GetLeadMetricsResponse:
        who = call.principal()
        if not who.has_role(*access.MANAGERS) and not who.is_service:
            raise PermissionDenied("metrics are for supervisors, directors and admins", reason="NOT_MANAGER")
        async with self.read(who) as uow:
            return await insights.metrics(uow, who, request, now())

    async def ListAttentionItems(
        self, request: pb.ListAttentionItemsRequest, context: Ctx
    ) -> pb.ListAttentionItemsResponse:
        who = call.principal()
        async with self.read(who) as uow:
            return await insights.attention(uow, who, request, now())

    async def ListDormantLeads(
        self, request: pb.ListDormantLeadsRequest, context: Ctx
    ) -> pb.ListDormantLeadsResponse:
        who = call.principal()
        async with self.read(who) as uow:
            return await insights.dormant(uow, who, request, now())
