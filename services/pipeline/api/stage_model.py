"""The tenant's stage model: read by everyone, changed by admins (a new version each time)."""

from __future__ import annotations

from kit.grpc import context as call
from kit.resources import PageRequest, UnitOfWork, query_key
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import stage_model_pb2 as sm
from services.pipeline import access, moves, stage_models
from services.pipeline.api.base import ApiBase, Ctx
from services.pipeline.convert import now
from services.pipeline.presenters import STAGE_MODELS
from services.pipeline.repositories.deals import Deals


class StageModelApi(ApiBase):
    async def GetStageModel(self, request: pb.GetStageModelRequest, context: Ctx) -> pb.GetStageModelResponse:
        who = call.principal()
        async with self.read(who) as uow:
            model = await stage_models.version(uow, request.version)
        return pb.GetStageModelResponse(stage_model=STAGE_MODELS.present(who, model))

    async def UpdateStageModel(
        self, request: pb.UpdateStageModelRequest, context: Ctx
    ) -> pb.UpdateStageModelResponse:
        who = call.principal()
        access.require_admin(who)
        mapping = dict(request.stage_mapping)

        async def work(uow: UnitOfWork) -> sm.StageModel:
            counts = await Deals(uow).open_counts_by_stage()
            return await stage_models.update(
                uow,
                request.stage_model,
                request.update_mask,
                who.user_id,
                counts,
                mapping,
                save=not request.validate_only,
            )

        async def change(uow: UnitOfWork) -> tuple[sm.StageModel, int]:
            model = await work(uow)
            affected = await moves.reevaluate_open_deals(uow, model, mapping, now())
            return model, affected

        affected = 0
        if request.validate_only:
            async with self.read(who) as uow:
                model = await work(uow)
        else:
            model, affected = await self.write(who, change)
        return pb.UpdateStageModelResponse(
            stage_model=STAGE_MODELS.present(who, model), affected_deal_count=affected
        )

    async def ListStageModelVersions(
        self, request: pb.ListStageModelVersionsRequest, context: Ctx
    ) -> pb.ListStageModelVersionsResponse:
        who = call.principal()
        page = PageRequest.parse(request.page_size, request.page_token)
        query = query_key("ListStageModelVersions")
        async with self.read(who) as uow:
            below = uow.tokens.decode(page.token, who.tenant, query)[0] if page.token else None
            models = await stage_models.versions(uow, below=below, limit=page.size + 1)
            token = ""
            if len(models) > page.size:
                models = models[: page.size]
                token = uow.tokens.encode(who.tenant, query, [models[-1].version])
        return pb.ListStageModelVersionsResponse(
            stage_models=[STAGE_MODELS.present(who, m) for m in models], next_page_token=token
        )
