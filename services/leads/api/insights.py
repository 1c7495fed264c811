"""Manager views: metrics, the supervisor board, dormant leads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from google.protobuf.message import Message

from kit.auth import Principal
from kit.errors import PermissionDenied
from kit.grpc import context as call
from kit.resources import UnitOfWork
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads import access, insights, validation
from services.leads.api.base import ApiBase, Ctx
from services.leads.convert import now

R = TypeVar("R", bound=Message)
T = TypeVar("T")


class InsightsApi(ApiBase):
    async def GetLeadMetrics(
        self, request: pb.GetLeadMetricsRequest, context: Ctx
    ) -> pb.GetLeadMetricsResponse:
        who = call.principal()
        validation.bounded_lists(request)
        if not who.has_role(*access.MANAGERS) and not who.is_service:
            raise PermissionDenied("metrics are for supervisors, directors and admins", reason="NOT_MANAGER")
        async with self.read(who) as uow:
            return await insights.metrics(uow, who, request, now())

    async def ListAttentionItems(
        self, request: pb.ListAttentionItemsRequest, context: Ctx
    ) -> pb.ListAttentionItemsResponse:
        return await self._view(insights.attention, request)

    async def ListDormantLeads(
        self, request: pb.ListDormantLeadsRequest, context: Ctx
    ) -> pb.ListDormantLeadsResponse:
        return await self._view(insights.dormant, request)

    async def _view(
        self, view: Callable[[UnitOfWork, Principal, R, datetime], Awaitable[T]], request: R
    ) -> T:
        who = call.principal()
        validation.bounded_lists(request)
        async with self.read(who) as uow:
            return await view(uow, who, request, now())
