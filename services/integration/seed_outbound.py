"""The demo outbound webhook subscription (`make run`): the platform posts to its own inbound receiver.

The loopback "partner" is the gateway's public receiver of the demo finance
connector (/hooks/v1/demo/demo-finance), signed with the same published demo secret,
so every delivery is verified there (Standard Webhooks v1) and recorded as a received
webhook (IGNORED: our event types are not finance mappings, so nothing loops back).
Loopback is reachable only because `make run` sets SALESOPS_OUTBOUND_ALLOW_LOOPBACK
(embedded mode; production refuses it).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import grpc

from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import webhooks_pb2 as wh

log = logging.getLogger("salesops.integration.seed")
DEMO_SUBSCRIPTION_ID = "demo-outbound"
EVENT_TYPES = ("pipeline.DealWon", "pipeline.DealLost", "leads.LeadConverted", "integration.PaymentReceived")


def demo_subscription(secret: str) -> wh.WebhookSubscription:
    # The launcher says where its gateway listens (--auto-ports picks a free port); else 8080.
    port = os.environ.get("SALESOPS_GATEWAY_PORT", "8080")
    gateway = os.environ.get("SALESOPS_DEMO_GATEWAY_URL", f"http://127.0.0.1:{port}").rstrip("/")
    return wh.WebhookSubscription(
        subscription_id=DEMO_SUBSCRIPTION_ID,
        display_name="Demo partner (loopback: the platform's own webhook receiver)",
        endpoint_url=f"{gateway}/hooks/v1/demo/demo-finance",
        event_types=list(EVENT_TYPES),
        signing_secret=secret,
        owner_user_id="admin",
    )


async def seed_outbound(  # stub: the async IntegrationServiceStub (typed sync in the stubs)
    stub: Any, md: tuple[tuple[str, str], ...], secret: str
) -> None:
    try:
        await stub.CreateWebhookSubscription(
            pb.CreateWebhookSubscriptionRequest(subscription=demo_subscription(secret)),
            metadata=md,
            timeout=30,
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:  # loopback not allowed here (production mode)
            log.warning("demo outbound subscription skipped: the outbound policy refuses loopback here")
        elif exc.code() != grpc.StatusCode.ALREADY_EXISTS:  # seeded before: left as the admin left it
            raise
