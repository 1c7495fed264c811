"""External channel configurations (admin; reads also for services): secrets write-only; test send."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from ulid import ULID

from kit.errors import InvalidArgument
from kit.grpc import context as call
from kit.resources import PageRequest
from salesops.notify.v1 import channel_config_pb2, delivery_pb2
from services.notify import channel_configs, directory
from services.notify.api.base import ApiBase, Ctx, M, admin_only
from services.notify.channels.base import Message, SendError
from services.notify.channels.checks import check_destinations
from services.notify.presenters import CHANNEL_CONFIG


class ChannelConfigsApi(ApiBase):
    async def _destinations(self, cfg: channel_config_pb2.ChannelConfig) -> None:
        # The same outbound rules as at send time (kit.net): checked at save, checked again per send.
        await check_destinations(cfg, self.outbound)

    async def CreateChannelConfig(
        self, request: M.CreateChannelConfigRequest, context: Ctx
    ) -> M.CreateChannelConfigResponse:
        p = call.principal()
        admin_only(p)
        config_id = request.channel_config.channel_config_id or str(ULID())
        saved = await self.tx.run(
            p.tenant,
            lambda uow: channel_configs.create(uow, request.channel_config, config_id, self._destinations),
        )
        return M.CreateChannelConfigResponse(channel_config=CHANNEL_CONFIG.present(p, saved))

    async def GetChannelConfig(
        self, request: M.GetChannelConfigRequest, context: Ctx
    ) -> M.GetChannelConfigResponse:
        p = call.principal()
        admin_only(p, reads_for_services=True)
        async with self.tx.read(p.tenant) as uow:
            cfg = await channel_configs.get(uow, request.channel_config_id)
        return M.GetChannelConfigResponse(channel_config=CHANNEL_CONFIG.present(p, cfg))

    async def ListChannelConfigs(
        self, request: M.ListChannelConfigsRequest, context: Ctx
    ) -> M.ListChannelConfigsResponse:
        p = call.principal()
        admin_only(p, reads_for_services=True)
        page = PageRequest.parse(request.page_size, request.page_token, default=100, maximum=500)
        enabled = request.enabled.value if request.HasField("enabled") else None
        async with self.tx.read(p.tenant) as uow:
            found = await channel_configs.listing(uow, request.channel, enabled, page)
        return M.ListChannelConfigsResponse(
            channel_configs=[CHANNEL_CONFIG.present(p, c) for c in found.items],
            next_page_token=found.next_page_token,
            total_size=found.total_size or 0,
        )

    async def UpdateChannelConfig(
        self, request: M.UpdateChannelConfigRequest, context: Ctx
    ) -> M.UpdateChannelConfigResponse:
        p = call.principal()
        admin_only(p)
        saved = await self.tx.run(
            p.tenant,
            lambda uow: channel_configs.update(
                uow, request.channel_config, request.update_mask, self._destinations
            ),
        )
        return M.UpdateChannelConfigResponse(channel_config=CHANNEL_CONFIG.present(p, saved))

    async def DeleteChannelConfig(
        self, request: M.DeleteChannelConfigRequest, context: Ctx
    ) -> M.DeleteChannelConfigResponse:
        p = call.principal()
        admin_only(p)
        await self.tx.run(
            p.tenant, lambda uow: channel_configs.delete(uow, request.channel_config_id, request.etag)
        )
        return M.DeleteChannelConfigResponse()

    async def TestChannelConfig(
        self, request: M.TestChannelConfigRequest, context: Ctx
    ) -> M.TestChannelConfigResponse:
        p = call.principal()
        admin_only(p)
        async with self.tx.read(p.tenant) as uow:
            cfg = await channel_configs.get(uow, request.channel_config_id)
            address = request.address
            if not address:
                user = request.recipient_user_id or p.user_id
                subs = await directory.subscribers(uow.session, [user])
                address = directory.address_for(subs.get(user), cfg.channel)
        if not address:
            raise InvalidArgument.field(
                "address", "no address for this channel: give one or a recipient_user_id"
            )
        adapter = self.adapters.get(cfg.channel)
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
