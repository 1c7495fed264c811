"""The tenant's pipeline settings: read by every member, changed by admins."""

from __future__ import annotations

from kit.grpc import context as call
from kit.resources import UnitOfWork
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import settings_pb2
from services.pipeline import pipeline_settings
from services.pipeline.api.base import ApiBase, Ctx
from services.pipeline.repositories.deals import Deals
from services.pipeline.repositories.targets import Targets


class SettingsApi(ApiBase):
    async def GetPipelineSettings(
        self, request: pb.GetPipelineSettingsRequest, context: Ctx
    ) -> pb.GetPipelineSettingsResponse:
        who = call.principal()
        async with self.read(who) as uow:
            return pb.GetPipelineSettingsResponse(settings=await pipeline_settings.current(uow))

    async def UpdatePipelineSettings(
        self, request: pb.UpdatePipelineSettingsRequest, context: Ctx
    ) -> pb.UpdatePipelineSettingsResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> settings_pb2.PipelineSettings:
            in_use = {"deals": await Deals(uow).count([]), "targets": await Targets(uow).count([])}
            return await pipeline_settings.update(uow, who, request.settings, request.update_mask, in_use)

        return pb.UpdatePipelineSettingsResponse(settings=await self.write(who, work))
