"""The caller's own devices for mobile push."""

from __future__ import annotations

from kit.grpc import context as call
from services.notify import devices
from services.notify.api.base import ApiBase, Ctx, M
from services.notify.presenters import DEVICE


class DevicesApi(ApiBase):
    async def RegisterDevice(
        self, request: M.RegisterDeviceRequest, context: Ctx
    ) -> M.RegisterDeviceResponse:
        p = call.principal()
        saved = await self.tx.run(p.tenant, lambda uow: devices.register(uow, p.user_id, request.device))
        return M.RegisterDeviceResponse(device=DEVICE.present(p, saved))

    async def ListDevices(self, request: M.ListDevicesRequest, context: Ctx) -> M.ListDevicesResponse:
        p = call.principal()
        async with self.tx.read(p.tenant) as uow:
            mine = await devices.of_user(uow, p.user_id)
        return M.ListDevicesResponse(devices=[DEVICE.present(p, d) for d in mine])

    async def UnregisterDevice(
        self, request: M.UnregisterDeviceRequest, context: Ctx
    ) -> M.UnregisterDeviceResponse:
        p = call.principal()
        await self.tx.run(p.tenant, lambda uow: devices.unregister(uow, p.user_id, request.device_id))
        return M.UnregisterDeviceResponse()
