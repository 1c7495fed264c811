"""The caller's own devices for mobile push."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from kit.errors import (
    FailedPrecondition,
    Violations,
)
from kit.grpc import context as call
from salesops.notify.v1 import (
    subscriber_pb2,
)
from services.notify.api.base import ApiBase, Ctx, M
from services.notify.presenters import DEVICE
from services.notify.store import (
    DeviceRow,
)


class DevicesApi(ApiBase):
    async def RegisterDevice(
        self, request: M.RegisterDeviceRequest, context: Ctx
    ) -> M.RegisterDeviceResponse:
        p = call.principal()
        d = subscriber_pb2.Device()
        d.CopyFrom(request.device)
        v = Violations()
        if not d.device_id or len(d.device_id) > 64:
            v.add("device.device_id", "1 to 64 characters")
        if not d.platform:
            v.add("device.platform", "required")
        if not d.push_provider:
            v.add("device.push_provider", "required")
        if not d.push_token.value:
            v.add("device.push_token", "required")
        v.raise_if_any("invalid device")
        now = datetime.now(UTC)
        d.user_id = p.user_id
        d.last_register_time.FromDatetime(now)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(select(DeviceRow).where(DeviceRow.device_id == d.device_id))
            if row is None:
                count = await s.scalar(select(func.count()).where(DeviceRow.user_id == p.user_id))
                if (count or 0) >= 20:
                    raise FailedPrecondition("at most 20 devices per user; unregister an old one first")
                row = DeviceRow(device_id=d.device_id, user_id=p.user_id)
                s.add(row)
            else:
                # The same installation under a new login moves to the new user.
                row.user_id = p.user_id
            row.payload = d.SerializeToString()
            row.registered_at = now
            await s.commit()
        return M.RegisterDeviceResponse(device=DEVICE.present(p, d))

    async def ListDevices(self, request: M.ListDevicesRequest, context: Ctx) -> M.ListDevicesResponse:
        p = call.principal()
        async with self.rt.db.session(p.tenant) as s:
            rows = list(
                await s.scalars(
                    select(DeviceRow).where(DeviceRow.user_id == p.user_id).order_by(DeviceRow.device_id)
                )
            )
        return M.ListDevicesResponse(
            devices=[DEVICE.present(p, subscriber_pb2.Device.FromString(r.payload)) for r in rows]
        )

    async def UnregisterDevice(
        self, request: M.UnregisterDeviceRequest, context: Ctx
    ) -> M.UnregisterDeviceResponse:
        p = call.principal()
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(
                select(DeviceRow).where(
                    DeviceRow.device_id == request.device_id, DeviceRow.user_id == p.user_id
                )
            )
            if row is not None:  # idempotent: unknown or another user's device is simply not there
                await s.delete(row)
                await s.commit()
        return M.UnregisterDeviceResponse()
