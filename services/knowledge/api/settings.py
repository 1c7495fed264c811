"""The tenant's knowledge settings: read by every member, changed by admins."""

from __future__ import annotations

from kit.grpc import context as call
from kit.resources import UnitOfWork
from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1 import settings_pb2
from services.knowledge import knowledge_settings
from services.knowledge.api.base import ApiBase, Ctx


class SettingsApi(ApiBase):
    async def GetKnowledgeSettings(
        self, request: pb.GetKnowledgeSettingsRequest, context: Ctx
    ) -> pb.GetKnowledgeSettingsResponse:
        who = call.principal()
        async with self.read(who) as uow:
            return pb.GetKnowledgeSettingsResponse(settings=await knowledge_settings.current(uow))

    async def UpdateKnowledgeSettings(
        self, request: pb.UpdateKnowledgeSettingsRequest, context: Ctx
    ) -> pb.UpdateKnowledgeSettingsResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> settings_pb2.KnowledgeSettings:
            return await knowledge_settings.update(uow, who, request.settings, request.update_mask)

        return pb.UpdateKnowledgeSettingsResponse(settings=await self.write(who, work))
