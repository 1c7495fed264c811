"""Received webhooks: ingest (public: the signature is the credential), read, list, replay (admins)."""

from __future__ import annotations

import re
from datetime import UTC

from kit.errors import InvalidArgument
from kit.grpc import context as call
from kit.resources import PageRequest, UnitOfWork
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import webhooks_pb2 as wh
from services.integration import webhooks
from services.integration.access import require_admin
from services.integration.api.base import ApiBase, Ctx, now
from services.integration.presenters import enum, present_webhook
from services.integration.repositories.webhooks import ReceivedWebhooks, WebhookSearch
from services.integration.store import ReceivedWebhookRow

# The receiver path's tenant segment (gateway/hooks.py checks the same before forwarding).
TENANT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class WebhooksApi(ApiBase):
    async def IngestWebhook(self, request: pb.IngestWebhookRequest, context: Ctx) -> pb.IngestWebhookResponse:
        """A public method: no caller; the tenant is the receiver path's, the signature the credential.

        An unknown tenant finds no connector (NOT_FOUND), as an unknown connector does.
        """
        if not TENANT.match(request.tenant):
            raise InvalidArgument.field(
                "tenant", "required: the receiver path's tenant ([A-Za-z0-9_-]{1,64})"
            )
        at = now()
        async with self.tx.read(request.tenant) as uow:  # verify before taking a writer's turn
            verified = await webhooks.check(uow, request, at)
        runs = 0

        async def work(uow: UnitOfWork) -> tuple[ReceivedWebhookRow, bool]:
            nonlocal runs
            runs += 1  # the first run inserts at once; a duplicate's unique-key clash runs it again
            return await webhooks.record(uow, request, verified, at, look_up=runs > 1)

        row, duplicate = await self.tx.run(request.tenant, work)
        return pb.IngestWebhookResponse(
            received_webhook_id=row.received_webhook_id, state=enum(row.state), duplicate=duplicate
        )

    async def GetReceivedWebhook(
        self, request: pb.GetReceivedWebhookRequest, context: Ctx
    ) -> pb.GetReceivedWebhookResponse:
        who = call.principal()
        require_admin(who)
        async with self.read(who) as uow:
            row = await ReceivedWebhooks(uow).get(request.received_webhook_id)
        full = request.view == wh.RECEIVED_WEBHOOK_VIEW_FULL
        return pb.GetReceivedWebhookResponse(received_webhook=present_webhook(who, row, full))

    async def ListReceivedWebhooks(
        self, request: pb.ListReceivedWebhooksRequest, context: Ctx
    ) -> pb.ListReceivedWebhooksResponse:
        who = call.principal()
        require_admin(who)
        page = PageRequest.parse(request.page_size, request.page_token)
        period = request.receive_period
        search = WebhookSearch(
            connector_id=request.connector_id,
            states=list(request.states),
            external_event_type=request.external_event_type,
            external_event_id=request.external_event_id,
            deal_id=request.deal_id,
            received_from=period.start_time.ToDatetime(tzinfo=UTC) if period.HasField("start_time") else None,
            received_to=period.end_time.ToDatetime(tzinfo=UTC) if period.HasField("end_time") else None,
        )
        async with self.read(who) as uow:
            found = await ReceivedWebhooks(uow).page(search, page)
        return pb.ListReceivedWebhooksResponse(
            received_webhooks=[present_webhook(who, r, False) for r in found.items],
            next_page_token=found.next_page_token,
        )

    async def ReplayReceivedWebhook(
        self, request: pb.ReplayReceivedWebhookRequest, context: Ctx
    ) -> pb.ReplayReceivedWebhookResponse:
        who = call.principal()
        require_admin(who)
        at = now()
        row = await self.write(who, lambda uow: webhooks.replay(uow, who, request.received_webhook_id, at))
        return pb.ReplayReceivedWebhookResponse(received_webhook=present_webhook(who, row, False))
