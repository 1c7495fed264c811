"""The tenant's NotifySettings (admin; reads also for services)."""

from __future__ import annotations

from kit.grpc import context as call
from services.notify import tenant_settings
from services.notify.api.base import ApiBase, Ctx, M, admin_only


class SettingsApi(ApiBase):
    async def GetNotifySettings(
        self, request: M.GetNotifySettingsRequest, context: Ctx
    ) -> M.GetNotifySettingsResponse:
        p = call.principal()
        admin_only(p, reads_for_services=True)
        async with self.tx.read(p.tenant) as uow:
            return M.GetNotifySettingsResponse(settings=await tenant_settings.current(uow))

    async def UpdateNotifySettings(
        self, request: M.UpdateNotifySettingsRequest, context: Ctx
    ) -> M.UpdateNotifySettingsResponse:
        p = call.principal()
        admin_only(p)
        saved = await self.tx.run(
            p.tenant,
            lambda uow: tenant_settings.update(uow, request.settings, request.update_mask, p.user_id),
        )
        return M.UpdateNotifySettingsResponse(settings=saved)
