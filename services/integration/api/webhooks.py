"""Received webhooks: ingest (public: the signature is the credential), read, list, replay (admins)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from opentelemetry import context as otel_context

from kit.errors import Aborted, InvalidArgument, Unauthenticated
from kit.grpc import context as call
from kit.resources import PageRequest, UnitOfWork
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import webhooks_pb2 as wh
from services.integration import webhook_checks as checks
from services.integration import webhooks
from services.integration.access import require_admin
from services.integration.api.base import ApiBase, Ctx, now
from services.integration.api.ingest_groups import LINGER_S, IngestGroups, Receivers, Recorded
from services.integration.presenters import enum, present_webhook
from services.integration.repositories.webhooks import ReceivedWebhooks, WebhookSearch

# The receiver path's tenant segment (gateway/hooks.py checks the same before forwarding).
TENANT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class WebhooksApi(ApiBase):
    _ingest_groups: IngestGroups | None = None
    _receivers: Receivers | None = None

    async def IngestWebhook(self, request: pb.IngestWebhookRequest, context: Ctx) -> pb.IngestWebhookResponse:
        """A public method: no caller; the tenant is the receiver path's, the signature the credential.

        An unknown tenant finds no connector (NOT_FOUND), as an unknown connector does. Verified
        against the connector's snapshot when one is kept (no read), else against its current row;
        written with the tenant's concurrent deliveries (ingest_groups), where a snapshot whose row
        changed sends the delivery back to be verified against the current one.
        """
        if not TENANT.match(request.tenant):
            raise InvalidArgument.field(
                "tenant", "required: the receiver path's tenant ([A-Za-z0-9_-]{1,64})"
            )
        if self._ingest_groups is None or self._receivers is None:
            linger = LINGER_S if self.tx.db.serialises_writers else 0.0
            self._ingest_groups, self._receivers = IngestGroups(self._record, linger=linger), Receivers()
        tenant, at = request.tenant, now()
        verified: checks.Verified | None = None
        kept = self._receivers.get(tenant, request.connector_id)
        if kept is not None:
            try:
                verified = checks.check(tenant, kept, request, at, log_refusal=False)
            except Unauthenticated:
                verified = None  # the secret may have changed: the current row decides a refusal
        for _ in range(2):
            if verified is None:
                verified = await self._verify_current(request, at)
            # Its record and event are built here, beside the group in its transaction, not in the next.
            delivery = webhooks.delivery(
                tenant, self.tx.source, request, verified, at, otel_context.get_current()
            )
            got = await self._ingest_groups.record(tenant, delivery)
            if got is not None:
                row, duplicate = got
                return pb.IngestWebhookResponse(
                    received_webhook_id=row.received_webhook_id, state=enum(row.state), duplicate=duplicate
                )
            self._receivers.drop(tenant, request.connector_id)  # changed since it was verified
            verified = None
        raise Aborted(
            "the connector changed while the webhook was received; retry", reason="CONCURRENT_WRITE"
        )

    async def _verify_current(self, request: pb.IngestWebhookRequest, at: datetime) -> checks.Verified:
        """Against the connector's current row (a read, outside the writer's turn), kept for the next."""
        assert self._receivers is not None
        try:
            async with self.tx.read(request.tenant) as uow:
                found = await checks.load_receiver(uow, request.connector_id)
        except Exception:
            self._receivers.drop(request.tenant, request.connector_id)
            raise
        self._receivers.put(request.tenant, found)
        return checks.check(request.tenant, found, request, at)

    async def _record(self, tenant: str, deliveries: list[webhooks.Delivery]) -> list[Recorded]:
        runs = 0

        async def work(uow: UnitOfWork) -> list[Recorded]:
            nonlocal runs
            runs += 1  # the first run inserts at once; a re-delivery's unique-key clash runs it again
            return await webhooks.record(uow, deliveries, look_up=runs > 1)

        return await self.tx.run(tenant, work)

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
