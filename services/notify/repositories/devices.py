"""Registered devices (upsert on the installation's device id)."""

from __future__ import annotations

from sqlalchemy import func, select

from kit.resources import Repository
from services.notify.store import DeviceRow


class DeviceRepository(Repository[DeviceRow]):
    model = DeviceRow
    resource = "notify.Device"
    key = ("device_id",)

    async def count_of(self, user_id: str) -> int:
        found = await self.session.scalar(select(func.count()).where(DeviceRow.user_id == user_id))
        return int(found or 0)

    async def of_user(self, user_id: str) -> list[DeviceRow]:
        """Most recently registered first."""
        return list(
            await self.session.scalars(
                select(DeviceRow)
                .where(DeviceRow.user_id == user_id)
                .order_by(DeviceRow.registered_at.desc(), DeviceRow.device_id)
            )
        )

    async def remove(self, row: DeviceRow) -> None:
        await self.session.delete(row)
