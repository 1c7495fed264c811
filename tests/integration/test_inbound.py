"""Inbound webhooks over real gRPC: verification, replay window, idempotency by event id, mapping, replay."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from google.protobuf.struct_pb2 import Struct
from sqlalchemy import func, select, update

from kit.auth import TokenVerifier
from kit.events import EventEnvelope
from kit.grpc.server import GrpcServer
from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import events_pb2 as ev
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import integration_service_pb2_grpc
from salesops.integration.v1 import webhooks_pb2 as wh
from services.integration import api
from services.integration.domain import signatures
from services.integration.store import ReceivedWebhookRow, outbox
from tests.integration.conftest import CONFIG, Integration, grpc_settings, service_token
from tests.integration.helpers import SECRET, finance_connector, ingest, payment, standard_headers


async def ready(integration: Integration, conn: c.Connector | None = None) -> None:
    await integration.call(
        "CreateConnector", pb.CreateConnectorRequest(connector=conn or finance_connector())
    )
    await integration.call(
        "EnableConnector", pb.EnableConnectorRequest(connector_id=(conn or finance_connector()).connector_id)
    )


async def send(
    integration: Integration, req: pb.IngestWebhookRequest, tenant: str = "demo"
) -> pb.IngestWebhookResponse:
    """As the gateway's receiver forwards it: no bearer token (a public method), the path's tenant."""
    req.tenant = tenant
    stub: Any = integration.stub  # typed for the sync API
    answer: pb.IngestWebhookResponse = await stub.IngestWebhook(req, timeout=30)
    return answer


async def refused(
    integration: Integration, req: pb.IngestWebhookRequest, tenant: str = "demo"
) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await send(integration, req, tenant)
    return err.value.code()


async def stored(integration: Integration) -> list[ReceivedWebhookRow]:
    async with integration.db.session("demo") as session:
        return list(await session.scalars(select(ReceivedWebhookRow)))


async def emitted(integration: Integration, event_type: str) -> list[EventEnvelope]:
    async with integration.db.engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.envelope).where(outbox.c.type == event_type))).all()
    return [EventEnvelope.FromString(r[0]) for r in rows]


async def test_a_signed_payment_is_stored_mapped_and_published_once(integration: Integration) -> None:
    await ready(integration)
    body = payment("evt_1")
    first = await send(integration, ingest("fin-1", body, standard_headers("evt_1", body)))
    assert first.state == wh.RECEIVED_WEBHOOK_STATE_PROCESSED and not first.duplicate
    # The sender retries: seconds later, and (re-signed) days later, beyond any 5-minute cache.
    again = await send(integration, ingest("fin-1", body, standard_headers("evt_1", body)))
    assert again.duplicate and again.received_webhook_id == first.received_webhook_id
    async with integration.db.session("demo") as session:
        await session.execute(
            update(ReceivedWebhookRow).values(received_at=datetime.now(UTC) - timedelta(days=4))
        )
        await session.commit()
    late = await send(integration, ingest("fin-1", body, standard_headers("evt_1", body)))
    assert late.duplicate
    rows = await stored(integration)
    assert len(rows) == 1 and rows[0].duplicate_count == 2 and rows[0].deal_id == "D-1"
    events = await emitted(integration, "integration.PaymentReceived")
    assert len(events) == 1
    paid = ev.PaymentReceived()
    events[0].payload.Unpack(paid)
    assert (paid.deal_id, paid.amount.amount_minor, paid.amount.currency, paid.payment.external_id) == (
        "D-1",
        1_250_000,
        "CNY",
        "PAY-evt_1",
    )
    assert (
        paid.origin.received_webhook_id == first.received_webhook_id
        and paid.origin.channel == ev.DATA_CHANNEL_WEBHOOK
    )
    got = (
        await integration.call(
            "GetReceivedWebhook",
            pb.GetReceivedWebhookRequest(
                received_webhook_id=first.received_webhook_id, view=wh.RECEIVED_WEBHOOK_VIEW_FULL
            ),
        )
    ).received_webhook
    assert (
        got.verification == wh.WEBHOOK_VERIFICATION_VERIFIED
        and got.emitted_events[0].event_type == "integration.PaymentReceived"
    )
    assert got.payload["data"]["external_id"] == "PAY-evt_1" and got.duplicate_count == 2
    health = (await integration.call("GetConnector", pb.GetConnectorRequest(connector_id="fin-1"))).connector
    assert health.health == c.CONNECTOR_HEALTH_HEALTHY and health.HasField("last_success_time")


async def test_concurrent_deliveries_of_one_event_apply_once(integration: Integration) -> None:
    await ready(integration)
    body = payment("evt_race")
    answers = await asyncio.gather(
        *(send(integration, ingest("fin-1", body, standard_headers("evt_race", body))) for _ in range(5))
    )
    assert sum(not a.duplicate for a in answers) == 1 and len({a.received_webhook_id for a in answers}) == 1
    assert len(await emitted(integration, "integration.PaymentReceived")) == 1


async def test_two_replicas_store_one_event_id_once_and_count_every_duplicate(
    integration: Integration,
) -> None:
    """Two replicas (each its own groups) on one database, one event id delivered to both at once:
    stored and published once, and every other delivery counted (on PostgreSQL their groups write
    in parallel; a read-then-write count would lose some)."""
    await ready(integration)
    other = GrpcServer(
        "integration",
        grpc_settings(),
        TokenVerifier(CONFIG),
        api.registrations(SimpleNamespace(db=integration.db)),  # type: ignore[arg-type]
    )
    await other.start()
    channel = grpc.aio.insecure_channel(other.address)
    try:
        replica = Integration(
            integration.db, integration_service_pb2_grpc.IntegrationServiceStub(channel), ""
        )
        body = payment("evt_twin")
        answers = await asyncio.gather(
            *(
                send(target, ingest("fin-1", body, standard_headers("evt_twin", body)))
                for _ in range(12)
                for target in (integration, replica)
            )
        )
    finally:
        await channel.close(None)
        await other.stop(0)
    assert sum(not a.duplicate for a in answers) == 1 and len({a.received_webhook_id for a in answers}) == 1
    rows = await stored(integration)
    assert len(rows) == 1 and rows[0].duplicate_count == 23
    assert len(await emitted(integration, "integration.PaymentReceived")) == 1


async def test_bad_stale_or_missing_signatures_store_nothing(integration: Integration) -> None:
    await ready(integration)
    body = payment("evt_2")
    forged_secret = "whsec_" + base64.b64encode(b"not the secret!!").decode()
    # Each case's headers are made just before it is sent, the stale and future ones 30 s past the
    # 300 s window: made up front at 301 s, a second of slow calls before brought "future" inside.
    cases: list[tuple[Callable[[], dict[str, str]], bytes]] = [
        (lambda: standard_headers("evt_2", body, secret=forged_secret), body),
        (lambda: standard_headers("evt_2", body, at=int(time.time()) - 330), body),
        (lambda: standard_headers("evt_2", body, at=int(time.time()) + 330), body),
        (dict, body),
        (lambda: standard_headers("evt_2", body), body.replace(b"1250000", b"9250000")),
    ]
    for headers, payload in cases:
        assert (
            await refused(integration, ingest("fin-1", payload, headers())) == grpc.StatusCode.UNAUTHENTICATED
        )
    assert await stored(integration) == [] and await emitted(integration, "integration.PaymentReceived") == []
    # Within the window it is accepted.
    ok = await send(
        integration, ingest("fin-1", body, standard_headers("evt_2", body, at=int(time.time()) - 280))
    )
    assert ok.state == wh.RECEIVED_WEBHOOK_STATE_PROCESSED


async def test_who_may_ingest_and_connector_states(integration: Integration) -> None:
    await integration.call("CreateConnector", pb.CreateConnectorRequest(connector=finance_connector()))
    body = payment("evt_3")
    req = ingest("fin-1", body, standard_headers("evt_3", body))
    assert (
        await refused(integration, req) == grpc.StatusCode.UNAVAILABLE
    )  # created DISABLED: the sender retries
    await integration.call("EnableConnector", pb.EnableConnectorRequest(connector_id="fin-1"))
    assert await refused(integration, req, tenant="") == grpc.StatusCode.INVALID_ARGUMENT
    assert await refused(integration, req, tenant="../demo") == grpc.StatusCode.INVALID_ARGUMENT
    # A public method: a bearer token, even another tenant's, changes nothing; the signature decides.
    req.tenant = "demo"
    sent = await integration.call_with(service_token("acme"), "IngestWebhook", req)
    assert not sent.duplicate
    assert await refused(integration, req, tenant="acme") == grpc.StatusCode.NOT_FOUND
    assert await refused(integration, ingest("nope", body, {})) == grpc.StatusCode.NOT_FOUND
    big = ingest("fin-1", b"x" * (1024 * 1024 + 1), {})
    assert await refused(integration, big) == grpc.StatusCode.INVALID_ARGUMENT
    listed = await integration.call("ListReceivedWebhooks", pb.ListReceivedWebhooksRequest(), tenant="acme")
    assert list(listed.received_webhooks) == []


async def test_unknown_types_are_kept_and_flagged_and_bad_layouts_replayable(
    integration: Integration,
) -> None:
    await ready(integration)
    odd = json.dumps({"id": "evt_4", "type": "customer.merged", "data": {}}).encode()
    ignored = await send(integration, ingest("fin-1", odd, standard_headers("evt_4", odd)))
    assert ignored.state == wh.RECEIVED_WEBHOOK_STATE_IGNORED
    broken = payment("evt_5", amount="12.50")  # type: ignore[arg-type]
    failed = await send(integration, ingest("fin-1", broken, standard_headers("evt_5", broken)))
    assert failed.state == wh.RECEIVED_WEBHOOK_STATE_FAILED
    got = (
        await integration.call(
            "GetReceivedWebhook", pb.GetReceivedWebhookRequest(received_webhook_id=failed.received_webhook_id)
        )
    ).received_webhook
    assert "amount_minor" in got.last_error.message and not got.HasField("payload")  # BASIC view
    conn = (await integration.call("GetConnector", pb.GetConnectorRequest(connector_id="fin-1"))).connector
    assert conn.health == c.CONNECTOR_HEALTH_DEGRADED and "evt_5" in conn.last_error
    listed = await integration.call(
        "ListReceivedWebhooks",
        pb.ListReceivedWebhooksRequest(
            states=[wh.RECEIVED_WEBHOOK_STATE_IGNORED, wh.RECEIVED_WEBHOOK_STATE_FAILED]
        ),
    )
    assert {r.external_event_id for r in listed.received_webhooks} == {"evt_4", "evt_5"}
    # Replay a processed one: mapped again, the same external reference (consumers upsert), counted.
    good = payment("evt_6")
    first = await send(integration, ingest("fin-1", good, standard_headers("evt_6", good)))
    replayed = (
        await integration.call(
            "ReplayReceivedWebhook",
            pb.ReplayReceivedWebhookRequest(received_webhook_id=first.received_webhook_id),
        )
    ).received_webhook
    assert replayed.replay_count == 1 and replayed.attempt_count == 2 and len(replayed.emitted_events) == 2
    assert len(await emitted(integration, "integration.PaymentReceived")) == 2
    denied = await refused_admin(integration, first.received_webhook_id)
    assert denied == grpc.StatusCode.PERMISSION_DENIED


async def refused_admin(integration: Integration, received_id: str) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await integration.call(
            "ReplayReceivedWebhook",
            pb.ReplayReceivedWebhookRequest(received_webhook_id=received_id),
            user="rep-a1",
        )
    return err.value.code()


async def test_v1a_and_dingtalk_native(integration: Integration) -> None:
    key = Ed25519PrivateKey.generate()
    pub = "whpk_" + base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    await ready(integration, finance_connector("fin-ed", signing_secret="", verification_public_key=pub))
    body = payment("evt_7")
    ts = int(time.time())
    sig = "v1a," + base64.b64encode(key.sign(f"evt_7.{ts}.".encode() + body)).decode()
    headers = {"webhook-id": "evt_7", "webhook-timestamp": str(ts), "webhook-signature": sig}
    assert (
        await send(integration, ingest("fin-ed", body, headers))
    ).state == wh.RECEIVED_WEBHOOK_STATE_PROCESSED
    other = Ed25519PrivateKey.generate()
    headers["webhook-signature"] = (
        "v1a," + base64.b64encode(other.sign(f"evt_7.{ts}.".encode() + body)).decode()
    )
    assert await refused(integration, ingest("fin-ed", body, headers)) == grpc.StatusCode.UNAUTHENTICATED
    settings = Struct()
    settings.update({"app_key": "ding-app"})
    ding = c.Connector(
        connector_id="ding-1",
        display_name="DingTalk",
        kind=c.CONNECTOR_KIND_MESSAGING,
        provider="dingtalk",
        settings=settings,
        secrets={"app_secret": "ding-secret"},
        inbound=c.InboundWebhookConfig(
            enabled=True,
            signature_scheme=c.SIGNATURE_SCHEME_PROVIDER_NATIVE,
            event_id_pointer="/msgId",
            event_type_pointer="/msgtype",
        ),
    )
    await ready(integration, ding)
    msg = json.dumps(
        {"msgId": "m-1", "msgtype": "text", "text": {"content": "预算批了"}}, ensure_ascii=False
    ).encode()
    ms = int(time.time() * 1000)
    good = {"timestamp": str(ms), "sign": signatures.dingtalk_sign("ding-secret", ms)}
    answer = await send(integration, ingest("ding-1", msg, good))
    assert (
        answer.state == wh.RECEIVED_WEBHOOK_STATE_IGNORED
    )  # kept; conversation mapping is the insights helper's
    bad = {"timestamp": str(ms), "sign": signatures.dingtalk_sign("other", ms)}
    assert await refused(integration, ingest("ding-1", msg, bad)) == grpc.StatusCode.UNAUTHENTICATED
    async with integration.db.session("demo") as session:
        n = await session.scalar(
            select(func.count())
            .select_from(ReceivedWebhookRow)
            .where(ReceivedWebhookRow.external_event_id == "m-1")
        )
    assert n == 1


async def test_secrets_never_reach_the_logs(
    integration: Integration, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await ready(integration)
    body = payment("evt_log")
    await send(integration, ingest("fin-1", body, standard_headers("evt_log", body)))
    forged = standard_headers(
        "evt_log2", body, secret="whsec_" + base64.b64encode(b"guessed secret!!").decode()
    )
    assert await refused(integration, ingest("fin-1", body, forged)) == grpc.StatusCode.UNAUTHENTICATED
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "webhook refused" in logged  # the refusal is logged...
    for secret in (SECRET, SECRET.removeprefix("whsec_"), "the-api-key", forged["webhook-signature"]):
        assert secret not in logged  # ...without the secret, the key or the offered signature
