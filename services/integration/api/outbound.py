"""Outbound webhooks: subscriptions, their deliveries and replays (admins only).

The endpoint URL is checked twice at registration: strictly parsed inside the use
case, and resolved here (no transaction open while DNS answers) so a name that
points at a private address is refused too; every delivery checks it again.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from google.protobuf import json_format
from ulid import ULID

from kit.errors import InvalidArgument, Unavailable
from kit.grpc import context as call
from kit.net import check_url
from kit.resources import PageRequest, UnitOfWork
from salesops.common.v1.events_pb2 import EventEnvelope
from salesops.common.v1.types_pb2 import Period
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import webhooks_pb2 as wh
from services.integration import deliveries, subscriptions
from services.integration.access import require_admin
from services.integration.api.base import ApiBase, Ctx, now
from services.integration.delivery_attempts import Prepared, headers_for, post
from services.integration.outbound_presenters import (
    present_answer,
    present_change,
    present_delivery,
    present_subscription,
)
from services.integration.repositories.outbound import (
    Attempts,
    Deliveries,
    DeliverySearch,
    SubscriptionChanges,
    Subscriptions,
)
from services.integration.store_outbound import WebhookDeliveryRow


def _period(p: Period) -> tuple[datetime | None, datetime | None]:
    start = p.start_time.ToDatetime(tzinfo=UTC) if p.HasField("start_time") else None
    end = p.end_time.ToDatetime(tzinfo=UTC) if p.HasField("end_time") else None
    return start, end


class OutboundWebhooksApi(ApiBase):
    async def _check_endpoint(self, url: str) -> None:
        client = self.outbound
        await check_url(url, client.policy, client.resolver, field="subscription.endpoint_url")

    def _start_after_commit(
        self, rows: Sequence[WebhookDeliveryRow], tenant: str
    ) -> Callable[[], Awaitable[None]]:
        refs = [(tenant, r.delivery_id) for r in rows]

        async def go() -> None:
            try:
                client = self.rt.temporal
            except (Unavailable, AttributeError):
                return  # the sweep schedule starts them once Temporal is back
            await deliveries.start_all(client, self.rt.settings.task_queue, refs, self.rt.db)

        return go

    async def CreateWebhookSubscription(
        self, request: pb.CreateWebhookSubscriptionRequest, context: Ctx
    ) -> pb.CreateWebhookSubscriptionResponse:
        who = call.principal()
        require_admin(who)
        policy = self.outbound.policy
        subscriptions.validate(request.subscription, policy)  # every problem before DNS is asked
        await self._check_endpoint(request.subscription.endpoint_url)
        at = now()
        row, shown = await self.write(
            who, lambda uow: subscriptions.create(uow, who, request.subscription, policy, at)
        )
        return pb.CreateWebhookSubscriptionResponse(
            subscription=present_subscription(who, row, at), generated_signing_secret=shown
        )

    async def GetWebhookSubscription(
        self, request: pb.GetWebhookSubscriptionRequest, context: Ctx
    ) -> pb.GetWebhookSubscriptionResponse:
        who = call.principal()
        require_admin(who)
        async with self.read(who) as uow:
            row = await Subscriptions(uow).get(request.subscription_id)
        return pb.GetWebhookSubscriptionResponse(subscription=present_subscription(who, row, now()))

    async def ListWebhookSubscriptions(
        self, request: pb.ListWebhookSubscriptionsRequest, context: Ctx
    ) -> pb.ListWebhookSubscriptionsResponse:
        who = call.principal()
        require_admin(who)
        page = PageRequest.parse(request.page_size, request.page_token)
        async with self.read(who) as uow:
            found = await Subscriptions(uow).page(request.state, request.event_type, page)
        at = now()
        return pb.ListWebhookSubscriptionsResponse(
            subscriptions=[present_subscription(who, r, at) for r in found.items],
            next_page_token=found.next_page_token,
        )

    async def UpdateWebhookSubscription(
        self, request: pb.UpdateWebhookSubscriptionRequest, context: Ctx
    ) -> pb.UpdateWebhookSubscriptionResponse:
        who = call.principal()
        require_admin(who)
        if not request.update_mask.paths:
            raise InvalidArgument.field("update_mask", "name the fields to change")
        if "endpoint_url" in request.update_mask.paths:
            await self._check_endpoint(request.subscription.endpoint_url)
        policy, at = self.outbound.policy, now()
        row = await self.write(
            who,
            lambda uow: subscriptions.update(uow, who, request.subscription, request.update_mask, policy, at),
        )
        return pb.UpdateWebhookSubscriptionResponse(subscription=present_subscription(who, row, at))

    async def DeleteWebhookSubscription(
        self, request: pb.DeleteWebhookSubscriptionRequest, context: Ctx
    ) -> pb.DeleteWebhookSubscriptionResponse:
        who = call.principal()
        require_admin(who)
        at = now()
        await self.write(
            who, lambda uow: subscriptions.delete(uow, who, request.subscription_id, request.etag, at)
        )
        return pb.DeleteWebhookSubscriptionResponse()

    async def EnableWebhookSubscription(
        self, request: pb.EnableWebhookSubscriptionRequest, context: Ctx
    ) -> pb.EnableWebhookSubscriptionResponse:
        who = call.principal()
        require_admin(who)
        at = now()
        row = await self.write(
            who,
            lambda uow: subscriptions.set_state(
                uow, who, request.subscription_id, True, request.etag, "", at
            ),
        )
        return pb.EnableWebhookSubscriptionResponse(subscription=present_subscription(who, row, at))

    async def DisableWebhookSubscription(
        self, request: pb.DisableWebhookSubscriptionRequest, context: Ctx
    ) -> pb.DisableWebhookSubscriptionResponse:
        who = call.principal()
        require_admin(who)
        at = now()
        row = await self.write(
            who,
            lambda uow: subscriptions.set_state(
                uow, who, request.subscription_id, False, request.etag, request.reason, at
            ),
        )
        return pb.DisableWebhookSubscriptionResponse(subscription=present_subscription(who, row, at))

    async def RotateWebhookSubscriptionSecret(
        self, request: pb.RotateWebhookSubscriptionSecretRequest, context: Ctx
    ) -> pb.RotateWebhookSubscriptionSecretResponse:
        who = call.principal()
        require_admin(who)
        at = now()
        overlap = request.overlap.ToTimedelta() if request.HasField("overlap") else None
        row, shown = await self.write(
            who,
            lambda uow: subscriptions.rotate(
                uow, who, request.subscription_id, request.new_signing_secret, overlap, at
            ),
        )
        return pb.RotateWebhookSubscriptionSecretResponse(
            subscription=present_subscription(who, row, at), generated_signing_secret=shown
        )

    async def TestWebhookSubscription(
        self, request: pb.TestWebhookSubscriptionRequest, context: Ctx
    ) -> pb.TestWebhookSubscriptionResponse:
        """A signed integration.WebhookPing, once, no retry, nothing stored; the attempt as the answer."""
        who = call.principal()
        require_admin(who)
        async with self.read(who) as uow:
            sub = await Subscriptions(uow).get(request.subscription_id)
        at = now()
        envelope = EventEnvelope(id=f"ping_{ULID()}", type="integration.WebhookPing", tenant=who.tenant)
        envelope.source, envelope.subject = "integration", sub.subscription_id
        envelope.occurred_at.FromDatetime(at)
        envelope.payload.Pack(wh.WebhookPing(subscription_id=sub.subscription_id, requested_by=who.user_id))
        body = json.dumps(json_format.MessageToDict(envelope), separators=(",", ":")).encode()
        ping = WebhookDeliveryRow(
            delivery_id=str(ULID()), event_id=envelope.id, event_type=envelope.type, body=body
        )
        headers = headers_for(sub, ping, at, int(at.timestamp()))
        timeout = wh.WebhookSubscription.FromString(sub.body).timeout.ToTimedelta().total_seconds() or 10.0
        answer = await post(self.outbound, Prepared(sub.endpoint_url, headers, body, timeout, 1), at)
        return pb.TestWebhookSubscriptionResponse(
            attempt=present_answer(answer), ok=200 <= answer.status < 300
        )

    async def ReplayDeadLetters(
        self, request: pb.ReplayDeadLettersRequest, context: Ctx
    ) -> pb.ReplayDeadLettersResponse:
        who = call.principal()
        require_admin(who)
        since, until = _period(request.dead_letter_period)
        at = now()

        async def work(uow: UnitOfWork) -> tuple[list[WebhookDeliveryRow], bool]:
            rows, truncated = await deliveries.replay_dead_letters(
                uow, request.subscription_id, list(request.event_types), since, until, at
            )
            uow.after_commit(self._start_after_commit(rows, who.tenant))
            return rows, truncated

        rows, truncated = await self.write(who, work)
        return pb.ReplayDeadLettersResponse(queued_count=len(rows), truncated=truncated)

    async def GetWebhookDelivery(
        self, request: pb.GetWebhookDeliveryRequest, context: Ctx
    ) -> pb.GetWebhookDeliveryResponse:
        who = call.principal()
        require_admin(who)
        async with self.read(who) as uow:
            row = await Deliveries(uow).get(request.delivery_id)
            attempts = await Attempts(uow).of(row.delivery_id)
        return pb.GetWebhookDeliveryResponse(delivery=present_delivery(row, attempts))

    async def ListWebhookDeliveries(
        self, request: pb.ListWebhookDeliveriesRequest, context: Ctx
    ) -> pb.ListWebhookDeliveriesResponse:
        who = call.principal()
        require_admin(who)
        page = PageRequest.parse(request.page_size, request.page_token)
        since, until = _period(request.create_period)
        search = DeliverySearch(
            subscription_id=request.subscription_id,
            states=list(request.states),
            event_type=request.event_type,
            event_id=request.event_id,
            created_from=since,
            created_to=until,
        )
        async with self.read(who) as uow:
            found = await Deliveries(uow).page(search, page)
            last = await Attempts(uow).last_of([r.delivery_id for r in found.items])
        return pb.ListWebhookDeliveriesResponse(
            deliveries=[
                present_delivery(r, [last[r.delivery_id]] if r.delivery_id in last else [])
                for r in found.items
            ],
            next_page_token=found.next_page_token,
        )

    async def ReplayWebhookDelivery(
        self, request: pb.ReplayWebhookDeliveryRequest, context: Ctx
    ) -> pb.ReplayWebhookDeliveryResponse:
        who = call.principal()
        require_admin(who)
        at = now()

        async def work(uow: UnitOfWork) -> WebhookDeliveryRow:
            row = await deliveries.replay_one(uow, request.delivery_id, at)
            uow.after_commit(self._start_after_commit([row], who.tenant))
            return row

        row = await self.write(who, work)
        return pb.ReplayWebhookDeliveryResponse(delivery=present_delivery(row, []))

    async def ListWebhookSubscriptionChanges(
        self, request: pb.ListWebhookSubscriptionChangesRequest, context: Ctx
    ) -> pb.ListWebhookSubscriptionChangesResponse:
        """The audit trail, kept after a delete: an unknown id with no trail is NOT_FOUND."""
        who = call.principal()
        require_admin(who)
        page = PageRequest.parse(request.page_size, request.page_token)
        async with self.read(who) as uow:
            found = await SubscriptionChanges(uow).page(request.subscription_id, page)
            if not found.items and not page.token:
                await Subscriptions(uow).get(request.subscription_id)  # NOT_FOUND (another tenant's too)
        return pb.ListWebhookSubscriptionChangesResponse(
            changes=[present_change(r) for r in found.items], next_page_token=found.next_page_token
        )
