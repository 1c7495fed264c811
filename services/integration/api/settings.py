"""IntegrationSettings: Get / Update, admins only (one versioned document per tenant)."""

from __future__ import annotations

from kit.grpc import context as call
from kit.resources import UnitOfWork
from salesops.integration.v1 import integration_service_pb2 as pb
from services.integration import integration_settings as settings
from services.integration.api.base import ApiBase, Ctx


class SettingsApi(ApiBase):
    async def GetIntegrationSettings(
        self, request: pb.GetIntegrationSettingsRequest, context: Ctx
    ) -> pb.GetIntegrationSettingsResponse:
        who = call.principal()
        settings.require_admin(who)
        async with self.read(who) as uow:
            return pb.GetIntegrationSettingsResponse(settings=await settings.current(uow))

    async def UpdateIntegrationSettings(
        self, request: pb.UpdateIntegrationSettingsRequest, context: Ctx
    ) -> pb.UpdateIntegrationSettingsResponse:
        who = call.principal()
        settings.require_admin(who)

        async def work(uow: UnitOfWork) -> pb.UpdateIntegrationSettingsResponse:
            saved = await settings.update(uow, who, request.settings, request.update_mask)
            return pb.UpdateIntegrationSettingsResponse(settings=saved)

        return await self.write(who, work)
