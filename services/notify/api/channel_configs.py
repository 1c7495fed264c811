"""External channel configurations (secrets write-only) and their test send."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from ulid import ULID

from kit.errors import (
    Aborted,
    InvalidArgument,
    NotFound,
)
from kit.grpc import context as call
from salesops.notify.v1 import (
    channel_config_pb2,
    delivery_pb2,
    notification_pb2,
)
from services.notify import (
    directory,
    sending,
)
from services.notify.api.base import ApiBase, Ctx, M
from services.notify.api.base import admin_only as _admin
from services.notify.channels.base import Message, SendError
from services.notify.channels.checks import check_destinations
from services.notify.presenters import CHANNEL_CONFIG, SECRET_PATHS
from services.notify.store import (
    ChannelConfigRow,
)


class ChannelConfigsApi(ApiBase):
    async def CreateChannelConfig(
        self, request: M.CreateChannelConfigRequest, context: Ctx
    ) -> M.CreateChannelConfigResponse:
        p = call.principal()
        _admin(p)
        cfg = channel_config_pb2.ChannelConfig()
        cfg.CopyFrom(request.channel_config)
        _check_channel_config(cfg)
        await check_destinations(cfg, self.outbound)
        cfg.channel_config_id = cfg.channel_config_id or str(ULID())
        async with self.rt.db.session(p.tenant) as s:
            s.add(
                ChannelConfigRow(
                    id=cfg.channel_config_id,
                    channel=cfg.channel,
                    enabled=cfg.enabled,
                    version=1,
                    payload=cfg.SerializeToString(),
                    updated_at=datetime.now(UTC),
                )
            )
            await s.commit()
        cfg.etag = "1"
        return M.CreateChannelConfigResponse(channel_config=CHANNEL_CONFIG.present(p, cfg))

    async def ListChannelConfigs(
        self, request: M.ListChannelConfigsRequest, context: Ctx
    ) -> M.ListChannelConfigsResponse:
        p = call.principal()
        _admin(p, reads_for_services=True)
        query = select(ChannelConfigRow).order_by(ChannelConfigRow.id)
        if request.channel:
            query = query.where(ChannelConfigRow.channel == request.channel)
        if request.HasField("enabled"):
            query = query.where(ChannelConfigRow.enabled.is_(request.enabled.value))
        async with self.rt.db.session(p.tenant) as s:
            rows = list(await s.scalars(query))
        out = []
        for row in rows:
            cfg = channel_config_pb2.ChannelConfig.FromString(row.payload)
            cfg.etag = str(row.version)
            out.append(CHANNEL_CONFIG.present(p, cfg))
        return M.ListChannelConfigsResponse(channel_configs=out, total_size=len(out))

    async def UpdateChannelConfig(
        self, request: M.UpdateChannelConfigRequest, context: Ctx
    ) -> M.UpdateChannelConfigResponse:
        p = call.principal()
        _admin(p)
        incoming = request.channel_config
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(
                select(ChannelConfigRow).where(ChannelConfigRow.id == incoming.channel_config_id)
            )
            if row is None:
                raise NotFound("channel_config", incoming.channel_config_id)
            if incoming.etag and incoming.etag != str(row.version):
                raise Aborted("the channel configuration changed since it was read; reload and retry")
            current = channel_config_pb2.ChannelConfig.FromString(row.payload)
            merged = _merge_channel_config(current, incoming, list(request.update_mask.paths))
            _check_channel_config(merged)
            await check_destinations(merged, self.outbound)
            row.payload = merged.SerializeToString()
            row.enabled = merged.enabled
            row.version += 1
            row.updated_at = datetime.now(UTC)
            await s.commit()
            merged.etag = str(row.version)
        return M.UpdateChannelConfigResponse(channel_config=CHANNEL_CONFIG.present(p, merged))

    async def DeleteChannelConfig(
        self, request: M.DeleteChannelConfigRequest, context: Ctx
    ) -> M.DeleteChannelConfigResponse:
        p = call.principal()
        _admin(p)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(
                select(ChannelConfigRow).where(ChannelConfigRow.id == request.channel_config_id)
            )
            if row is None:
                raise NotFound("channel_config", request.channel_config_id)
            if request.etag and request.etag != str(row.version):
                raise Aborted("the channel configuration changed since it was read; reload and retry")
            await s.delete(row)
            await s.commit()
        return M.DeleteChannelConfigResponse()

    async def TestChannelConfig(
        self, request: M.TestChannelConfigRequest, context: Ctx
    ) -> M.TestChannelConfigResponse:
        p = call.principal()
        _admin(p)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(
                select(ChannelConfigRow).where(ChannelConfigRow.id == request.channel_config_id)
            )
            if row is None:
                raise NotFound("channel_config", request.channel_config_id)
            address = request.address
            if not address:
                user = request.recipient_user_id or p.user_id
                subs = await directory.subscribers(s, [user])
                address = sending.address_for(subs.get(user), row.channel)
        if not address:
            raise InvalidArgument.field(
                "address", "no address for this channel: give one or a recipient_user_id"
            )
        cfg = channel_config_pb2.ChannelConfig.FromString(row.payload)
        adapter = self.adapters.get(row.channel)
        if adapter is None:
            raise InvalidArgument.field("channel_config_id", "this channel has no adapter")
        message = Message(str(ULID()), "", "system", address, "SalesOps test message", "This is a test.")
        started = asyncio.get_running_loop().time()
        out = M.TestChannelConfigResponse()
        try:
            out.provider_message_id = await adapter.send(cfg, message)
            out.success = True
        except SendError as exc:
            out.error.CopyFrom(
                delivery_pb2.DeliveryError(
                    code=exc.code,
                    message=exc.message,
                    provider_code=exc.provider_code,
                    permanent=exc.permanent,
                )
            )
        out.latency.FromTimedelta(timedelta(seconds=asyncio.get_running_loop().time() - started))
        return out

    async def GetChannelConfig(
        self, request: M.GetChannelConfigRequest, context: Ctx
    ) -> M.GetChannelConfigResponse:
        p = call.principal()
        _admin(p, reads_for_services=True)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(
                select(ChannelConfigRow).where(ChannelConfigRow.id == request.channel_config_id)
            )
        if row is None:
            raise NotFound("channel_config", request.channel_config_id)
        cfg = channel_config_pb2.ChannelConfig.FromString(row.payload)
        cfg.etag = str(row.version)
        return M.GetChannelConfigResponse(channel_config=CHANNEL_CONFIG.present(p, cfg))


_CONFIG_FIELDS = ("display_name", "enabled", "is_default", "org_unit_path", "retry_policy")
_SETTINGS = ("sms", "email", "wecom_bot", "dingtalk_bot", "webhook", "mobile_push")


def _merge_channel_config(
    current: channel_config_pb2.ChannelConfig, incoming: channel_config_pb2.ChannelConfig, paths: list[str]
) -> channel_config_pb2.ChannelConfig:
    """Apply the masked fields; a secret left empty in the update keeps its stored value."""
    merged = channel_config_pb2.ChannelConfig()
    merged.CopyFrom(current)
    kind = current.WhichOneof("settings") or ""
    for path in paths or [*_CONFIG_FIELDS, kind]:
        root = path.split(".")[0]
        if root in ("channel", "channel_config_id"):
            raise InvalidArgument.field(f"update_mask.{path}", "immutable")
        if root not in (*_CONFIG_FIELDS, *_SETTINGS):
            raise InvalidArgument.field("update_mask", f"unknown field {path!r}")
        if root in _SETTINGS:
            if root != kind:
                raise InvalidArgument.field(
                    f"channel_config.{root}", f"this configuration holds {kind} settings"
                )
            new = getattr(incoming, root)
            kept = channel_config_pb2.ChannelConfig()
            kept.CopyFrom(merged)
            getattr(merged, root).CopyFrom(new)
            for group, name in SECRET_PATHS:
                if group == root and not getattr(new, name).value:
                    getattr(getattr(merged, root), name).CopyFrom(getattr(getattr(kept, root), name))
        elif root == "retry_policy":
            merged.retry_policy.CopyFrom(incoming.retry_policy)
        else:
            setattr(merged, root, getattr(incoming, root))
    return merged


def _check_channel_config(cfg: channel_config_pb2.ChannelConfig) -> None:
    from kit.errors import Violations

    v = Violations()
    if not cfg.display_name.strip():
        v.add("channel_config.display_name", "required")
    expected = {
        notification_pb2.CHANNEL_SMS: "sms",
        notification_pb2.CHANNEL_EMAIL: "email",
        notification_pb2.CHANNEL_WECOM_BOT: "wecom_bot",
        notification_pb2.CHANNEL_DINGTALK_BOT: "dingtalk_bot",
        notification_pb2.CHANNEL_WEBHOOK: "webhook",
        notification_pb2.CHANNEL_MOBILE_PUSH: "mobile_push",
    }.get(cfg.channel)
    if expected is None:
        v.add("channel_config.channel", "an external channel is required")
    elif cfg.WhichOneof("settings") != expected:
        v.add(f"channel_config.{expected}", f"settings for {expected} are required")
    if cfg.WhichOneof("settings") == "email" and (not cfg.email.host or "@" not in cfg.email.from_address):
        v.add("channel_config.email", "host and from_address are required")
    v.raise_if_any("invalid channel configuration")
