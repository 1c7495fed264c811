"""Requests and signed deliveries the integration tests share."""

from __future__ import annotations

import json
import time
from typing import Any

from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import integration_service_pb2 as pb
from services.integration.domain import signatures

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MAPPINGS = [
    c.InboundEventMapping(
        external_event_type="payment.succeeded", mapped_event_type=c.MAPPED_EVENT_TYPE_PAYMENT_RECEIVED
    ),
    c.InboundEventMapping(
        external_event_type="contract.signed", mapped_event_type=c.MAPPED_EVENT_TYPE_CONTRACT_SIGNED
    ),
]


def finance_connector(
    connector_id: str = "fin-1", base_url: str = "https://finance.example.com", **inbound: Any
) -> c.Connector:
    settings = Struct()
    settings.update({"base_url": base_url})
    inbound.setdefault("signature_scheme", c.SIGNATURE_SCHEME_STANDARD_WEBHOOKS)
    inbound.setdefault("signing_secret", SECRET)
    return c.Connector(
        connector_id=connector_id,
        display_name="Kingdee east",
        kind=c.CONNECTOR_KIND_FINANCE,
        provider="finance_http",
        settings=settings,
        secrets={"api_key": "the-api-key"},
        inbound=c.InboundWebhookConfig(enabled=True, mappings=MAPPINGS, **inbound),
    )


def payment(event_id: str, deal_id: str = "D-1", amount: int = 1_250_000, **data: Any) -> bytes:
    body = {
        "id": event_id,
        "type": "payment.succeeded",
        "data": {
            "external_id": f"PAY-{event_id}",
            "amount_minor": amount,
            "currency": "CNY",
            "deal_id": deal_id,
            "value_date": "2026-12-01",
            "method": "bank_transfer",
            "occurred_at": "2026-12-01T08:00:00Z",
            **data,
        },
    }
    return json.dumps(body).encode()


def standard_headers(
    event_id: str, body: bytes, *, secret: str = SECRET, at: int | None = None
) -> dict[str, str]:
    ts = int(time.time()) if at is None else at
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signatures.sign_standard_v1(secret, event_id, ts, body),
        "content-type": "application/json",
    }


def ingest(
    connector_id: str, body: bytes, headers: dict[str, str], tenant: str = "demo"
) -> pb.IngestWebhookRequest:
    now = Timestamp()
    now.GetCurrentTime()
    return pb.IngestWebhookRequest(
        tenant=tenant,
        connector_id=connector_id,
        body=body,
        headers=headers,
        content_type="application/json",
        receive_time=now,
    )
