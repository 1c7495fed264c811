"""Channel configuration use cases: secrets and webhook header values sealed at rest, write-only.

A secret (or header value) left empty in an update keeps its stored value, so a client
that read a configuration (values never come back) can save it again unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from google.protobuf.field_mask_pb2 import FieldMask

from kit import secrets
from kit.errors import Violations
from kit.resources import Page, PageRequest, UnitOfWork, query_key
from salesops.notify.v1 import channel_config_pb2, notification_pb2
from services.notify.documents import Documents
from services.notify.listing import page_in_memory
from services.notify.presenters import SECRET_PATHS
from services.notify.repositories.configuration import ChannelConfigRepository
from services.notify.store import ChannelConfigRow

ChannelConfig = channel_config_pb2.ChannelConfig
Check = Callable[[ChannelConfig], Awaitable[None]]

SETTINGS_OF_CHANNEL = {
    notification_pb2.CHANNEL_SMS: "sms",
    notification_pb2.CHANNEL_EMAIL: "email",
    notification_pb2.CHANNEL_WECOM_BOT: "wecom_bot",
    notification_pb2.CHANNEL_DINGTALK_BOT: "dingtalk_bot",
    notification_pb2.CHANNEL_WEBHOOK: "webhook",
    notification_pb2.CHANNEL_MOBILE_PUSH: "mobile_push",
}


def check(cfg: ChannelConfig) -> None:
    v = Violations()
    if not cfg.display_name.strip():
        v.add("channel_config.display_name", "required")
    expected = SETTINGS_OF_CHANNEL.get(cfg.channel)
    if expected is None:
        v.add("channel_config.channel", "an external channel is required")
    elif cfg.WhichOneof("settings") != expected:
        v.add(f"channel_config.{expected}", f"settings for {expected} are required")
    if cfg.WhichOneof("settings") == "email" and (not cfg.email.host or "@" not in cfg.email.from_address):
        v.add("channel_config.email", "host and from_address are required")
    v.raise_if_any("invalid channel configuration")


def seal_secret(secret: channel_config_pb2.Secret, now: datetime) -> None:
    """A newly given value sealed, with what responses may show of it (set, hint, when)."""
    plain = secret.value
    if not plain or secrets.is_sealed(plain):
        return
    secret.value = secrets.seal(plain)
    secret.set = True
    secret.hint = plain[-4:] if len(plain) > 8 else ""
    secret.update_time.FromDatetime(now)


def seal_values(stored: ChannelConfig | None, cfg: ChannelConfig) -> ChannelConfig:
    """Seal new secrets and header values; keep stored ones where the update left them empty."""
    now = datetime.now(UTC)
    kind = cfg.WhichOneof("settings")
    same_kind = stored is not None and stored.WhichOneof("settings") == kind
    for group, name in SECRET_PATHS:
        if group != kind:
            continue
        secret = getattr(getattr(cfg, group), name)
        if not secret.value and same_kind:
            assert stored is not None
            secret.CopyFrom(getattr(getattr(stored, group), name))
        elif not secret.value:
            secret.Clear()
        else:
            seal_secret(secret, now)
    if kind == "webhook":
        kept = stored.webhook.headers if stored is not None and same_kind else {}
        for key, value in list(cfg.webhook.headers.items()):
            if not value and key in kept:
                cfg.webhook.headers[key] = kept[key]
            elif value and not secrets.is_sealed(value):
                cfg.webhook.headers[key] = secrets.seal(value)
    return cfg


def _prepare(stored: ChannelConfig | None, proposed: ChannelConfig) -> ChannelConfig:
    check(proposed)
    return seal_values(stored, proposed)


CONFIGS = Documents(
    ChannelConfigRepository,
    ChannelConfig,
    "channel_config_id",
    columns=lambda c: {"channel": c.channel, "enabled": c.enabled},
    prepare=_prepare,
)


async def create(uow: UnitOfWork, cfg: ChannelConfig, config_id: str, destinations: Check) -> ChannelConfig:
    return await CONFIGS.create(uow, cfg, config_id, check=destinations)


async def get(uow: UnitOfWork, config_id: str) -> ChannelConfig:
    return await CONFIGS.get(uow, config_id)


async def update(uow: UnitOfWork, cfg: ChannelConfig, mask: FieldMask, destinations: Check) -> ChannelConfig:
    return await CONFIGS.update(uow, cfg, mask, check=destinations)


async def delete(uow: UnitOfWork, config_id: str, etag: str) -> None:
    await CONFIGS.delete(uow, config_id, etag)


async def listing(
    uow: UnitOfWork, channel: int, enabled: bool | None, page: PageRequest
) -> Page[ChannelConfig]:
    """Ordered by channel, then display name (then id)."""
    where = []
    if channel:
        where.append(ChannelConfigRow.channel == channel)
    if enabled is not None:
        where.append(ChannelConfigRow.enabled.is_(enabled))
    rows = await ChannelConfigRepository(uow).matching(where)
    return page_in_memory(
        uow,
        [CONFIGS.read(r) for r in rows],
        lambda c: (int(c.channel), c.display_name, c.channel_config_id),
        page,
        query_key("notify.ChannelConfig", channel, enabled),
    )
