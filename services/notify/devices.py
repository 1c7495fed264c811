"""Device use cases: the caller's own installations; push tokens sealed at rest, write-only."""

from __future__ import annotations

from datetime import UTC, datetime

from kit.resources import UnitOfWork, sanitize_create
from salesops.notify.v1 import subscriber_pb2
from services.notify.channel_configs import seal_secret
from services.notify.domain import devices as rules
from services.notify.repositories.devices import DeviceRepository
from services.notify.store import DeviceRow


async def register(uow: UnitOfWork, user_id: str, incoming: subscriber_pb2.Device) -> subscriber_pb2.Device:
    d = sanitize_create(incoming)
    rules.check(d.device_id, d.platform, d.push_provider, bool(d.push_token.value))
    now = datetime.now(UTC)
    d.user_id = user_id
    d.last_register_time.FromDatetime(now)
    seal_secret(d.push_token, now)
    repo = DeviceRepository(uow)
    row = await repo.find(d.device_id)
    if row is None:
        rules.may_add(await repo.count_of(user_id))
        row = DeviceRow(device_id=d.device_id, user_id=user_id, payload=b"", registered_at=now)
        await repo.add(row)
    # The same installation under a new login moves to the new user.
    row.user_id, row.payload, row.registered_at = user_id, d.SerializeToString(), now
    return d


async def of_user(uow: UnitOfWork, user_id: str) -> list[subscriber_pb2.Device]:
    return [subscriber_pb2.Device.FromString(r.payload) for r in await DeviceRepository(uow).of_user(user_id)]


async def unregister(uow: UnitOfWork, user_id: str, device_id: str) -> None:
    """Idempotent: an unknown device, or another user's, is simply not there."""
    repo = DeviceRepository(uow)
    row = await repo.find(device_id)
    if row is not None and row.user_id == user_id:
        await repo.remove(row)
