"""End to end: a loopback finance system posts a signed "payment received" to the gateway's public
receiver three times; integration verifies and stores it once, publishes one PaymentReceived; pipeline's
consumer records one payment fact on the deal. Real gateway (uvicorn), real gRPC services, SQLite, Redis.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from sqlalchemy import func, select

from deploy.local.infra import free_port
from gateway.app import create_app
from gateway.bounds import RequestBounds
from gateway.config import GatewaySettings
from kit.auth import TokenVerifier
from kit.config import SERVICES, Settings
from kit.events import OutboxRelay, service_stream
from kit.grpc.server import GrpcServer
from kit.migrations import upgrade_to_head
from kit.runtime import Runtime, start_role
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import integration_service_pb2_grpc
from salesops.pipeline.v1 import pipeline_service_pb2 as ppb
from salesops.pipeline.v1 import pipeline_service_pb2_grpc, reconciliation_pb2
from services.integration import api as integration_api
from services.integration import store as integration_store
from services.pipeline import api as pipeline_api
from services.pipeline.app import SPEC as PIPELINE
from services.pipeline.store import processed_events
from tests.gateway.conftest import serve_app
from tests.integration.conftest import CONFIG, grpc_settings, token
from tests.integration.helpers import finance_connector, payment, standard_headers
from tests.pipeline.helpers import new_deal


@dataclass
class Stack:
    gateway: httpx.AsyncClient
    integration: Any  # IntegrationServiceStub (async; the generated stubs type it sync)
    pipeline: Any  # PipelineServiceStub
    pipeline_rt: Runtime


def md(user: str = "admin") -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token(user)}"),)


async def runtime(service: str, url: str, redis_url: str) -> Runtime:
    rt = Runtime(replace(Settings.from_env(service), database_url=url, redis_url=redis_url))
    await upgrade_to_head(service, rt.db)
    return rt


@pytest.fixture
async def stack(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    monkeypatch.setenv("SALESOPS_OUTBOUND_ALLOW", "127.0.0.1")
    rt_i = await runtime("integration", f"sqlite+aiosqlite:///{tmp_path / 'integration.db'}", redis_url)
    rt_p = await runtime("pipeline", f"sqlite+aiosqlite:///{tmp_path / 'pipeline.db'}", redis_url)
    verifier = TokenVerifier(CONFIG)
    servers = [
        GrpcServer("integration", grpc_settings(), verifier, integration_api.registrations(rt_i)),
        GrpcServer("pipeline", grpc_settings(), verifier, pipeline_api.registrations(rt_p)),
    ]
    for s in servers:
        await s.start()
    relay = OutboxRelay(rt_i.db, rt_i.redis, service_stream("integration"), table=integration_store.outbox)
    relay_task = asyncio.create_task(relay.run())
    stoppers = await start_role(rt_p, PIPELINE, "api")
    addresses = {name: f"127.0.0.1:{free_port()}" for name in SERVICES}
    addresses["integration"], addresses["pipeline"] = servers[0].address, servers[1].address
    overrides: dict[str, Any] = getattr(request, "param", {})  # gateway settings for one test
    settings = replace(GatewaySettings(addresses=addresses, redis_url=redis_url), **overrides)
    channels = [grpc.aio.insecure_channel(s.address) for s in servers]
    try:
        async with (
            serve_app(create_app(settings=settings)) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as client,
        ):
            yield Stack(
                client,
                integration_service_pb2_grpc.IntegrationServiceStub(channels[0]),
                pipeline_service_pb2_grpc.PipelineServiceStub(channels[1]),
                rt_p,
            )
    finally:
        for stop in stoppers:
            await stop()
        await relay.stop()
        await relay_task
        for ch in channels:
            await ch.close(None)
        for s in servers:
            await s.stop(0)
        await rt_i.close()
        await rt_p.close()


async def applied(rt: Runtime) -> int:
    async with rt.db.engine.connect() as conn:
        p = processed_events
        n = await conn.scalar(
            select(func.count()).select_from(p).where(p.c.consumer_group == "pipeline-integration")
        )
    return int(n or 0)


async def until_applied(rt: Runtime, n: int) -> None:
    for _ in range(1200):  # generous: a busy 2-core machine
        if await applied(rt) >= n:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"pipeline applied {await applied(rt)} integration events, expected {n}")


async def test_a_signed_payment_sent_three_times_marks_the_deal_paid_once(stack: Stack) -> None:
    deal = (
        await stack.pipeline.CreateDeal(
            ppb.CreateDealRequest(deal=new_deal("D-1", amount=1_250_000)), metadata=md("rep-a1")
        )
    ).deal
    await stack.integration.CreateConnector(
        pb.CreateConnectorRequest(connector=finance_connector()), metadata=md()
    )
    await stack.integration.EnableConnector(pb.EnableConnectorRequest(connector_id="fin-1"), metadata=md())
    body = payment("evt_paid", deal_id=deal.deal_id)
    for _ in range(3):  # the finance system retries (lost acknowledgements): re-signed each time
        answer = await stack.gateway.post(
            "/hooks/v1/demo/fin-1", content=body, headers=standard_headers("evt_paid", body)
        )
        assert answer.status_code == 200, answer.text
    await until_applied(stack.pipeline_rt, 1)
    facts = (
        await stack.pipeline.ListFinanceFacts(ppb.ListFinanceFactsRequest(deal_id="D-1"), metadata=md())
    ).facts
    assert len(facts) == 1
    fact = facts[0]
    assert fact.kind == reconciliation_pb2.FINANCE_FACT_KIND_PAYMENT_RECEIVED
    assert (fact.source_system, fact.external_id, fact.amount.amount_minor) == (
        "fin-1",
        "PAY-evt_paid",
        1_250_000,
    )
    assert fact.match_status == reconciliation_pb2.FACT_MATCH_STATUS_MATCHED and fact.matched_deal_id == "D-1"
    # An admin replays the stored webhook: a second event with the same external record; pipeline upserts.
    listed = await stack.integration.ListReceivedWebhooks(pb.ListReceivedWebhooksRequest(), metadata=md())
    (received,) = listed.received_webhooks
    assert received.duplicate_count == 2
    await stack.integration.ReplayReceivedWebhook(
        pb.ReplayReceivedWebhookRequest(received_webhook_id=received.received_webhook_id), metadata=md()
    )
    await until_applied(stack.pipeline_rt, 2)
    facts = (
        await stack.pipeline.ListFinanceFacts(ppb.ListFinanceFactsRequest(deal_id="D-1"), metadata=md())
    ).facts
    assert len(facts) == 1


async def test_the_public_receiver_refuses_without_telling_why(stack: Stack) -> None:
    await stack.integration.CreateConnector(
        pb.CreateConnectorRequest(connector=finance_connector()), metadata=md()
    )
    body = payment("evt_x")
    stale = standard_headers("evt_x", body, at=int(time.time()) - 600)
    disabled = await stack.gateway.post(
        "/hooks/v1/demo/fin-1", content=body, headers=standard_headers("evt_x", body)
    )
    assert disabled.status_code == 503  # created disabled: the sender retries later
    await stack.integration.EnableConnector(pb.EnableConnectorRequest(connector_id="fin-1"), metadata=md())
    bad = dict(standard_headers("evt_x", body), **{"webhook-signature": "v1,AAAA"})
    for headers, path in [
        (stale, "/hooks/v1/demo/fin-1"),
        (bad, "/hooks/v1/demo/fin-1"),
        ({}, "/hooks/v1/demo/fin-1"),
    ]:
        answer = await stack.gateway.post(path, content=body, headers=headers)
        assert answer.status_code == 401 and json.loads(answer.content)["message"] == "webhook refused"
    for path in (
        "/hooks/v1/acme/fin-1",
        "/hooks/v1/demo/nope",
        "/hooks/v1/demo/fin-1/extra",
        "/hooks/v1/demo/..%2Ffin-1",
    ):
        answer = await stack.gateway.post(path, content=body, headers=standard_headers("evt_x", body))
        assert answer.status_code == 404, path
    too_big = b"x" * ((1 << 20) + 1)
    assert (await stack.gateway.post("/hooks/v1/demo/fin-1", content=too_big)).status_code == 413

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(17):
            yield b"x" * 65536

    assert (await stack.gateway.post("/hooks/v1/demo/fin-1", content=chunked())).status_code == 413
    assert (await stack.gateway.get("/hooks/v1/demo/fin-1")).status_code == 405
    # A bearer token does not make the receiver skip verification, nor is it forwarded.
    forged = await stack.gateway.post(
        "/hooks/v1/demo/fin-1", content=body, headers={"Authorization": f"Bearer {token('admin')}"}
    )
    assert forged.status_code == 401
    listed = await stack.integration.ListReceivedWebhooks(pb.ListReceivedWebhooksRequest(), metadata=md())
    assert list(listed.received_webhooks) == []


@pytest.mark.parametrize(
    "stack", [{"user_limit": 3, "bounds": replace(RequestBounds(), address_limit=2)}], indirect=True
)
async def test_the_receiver_is_rate_limited_per_connector_and_probing_addresses_are_blocked(
    stack: Stack,
) -> None:
    await stack.integration.CreateConnector(
        pb.CreateConnectorRequest(connector=finance_connector()), metadata=md()
    )
    await stack.integration.EnableConnector(pb.EnableConnectorRequest(connector_id="fin-1"), metadata=md())
    statuses = []
    for n in range(4):  # the connector's window holds 3 deliveries
        body = payment(f"evt_rl{n}")
        answer = await stack.gateway.post(
            "/hooks/v1/demo/fin-1", content=body, headers=standard_headers(f"evt_rl{n}", body)
        )
        statuses.append(answer.status_code)
    assert statuses == [200, 200, 200, 429]
    # Another connector of the tenant has its own window; wrong guesses count against the address.
    probes = [
        (await stack.gateway.post(f"/hooks/v1/demo/guess-{n}", content=b"{}")).status_code for n in range(4)
    ]
    assert probes[:2] == [404, 404] and probes[-1] == 429


@pytest.fixture
def verify_only_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway (and runtimes) configured as in k8s with RS256: a public key, no signing key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "jwt-public.pem"
    pem.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    monkeypatch.setenv("SALESOPS_JWT_ALG", "RS256")
    monkeypatch.setenv("SALESOPS_JWT_PUBLIC_KEY_FILE", str(pem))
    monkeypatch.setenv("SALESOPS_PAGE_TOKEN_SECRET", "page-token-secret-for-this-test-0123456789")


async def test_the_receiver_needs_no_signing_key(verify_only_gateway: None, stack: Stack) -> None:
    """IngestWebhook is public: a gateway that can only verify tokens still forwards webhooks."""
    await stack.integration.CreateConnector(
        pb.CreateConnectorRequest(connector=finance_connector()), metadata=md()
    )
    await stack.integration.EnableConnector(pb.EnableConnectorRequest(connector_id="fin-1"), metadata=md())
    body = payment("evt_rs256")
    answer = await stack.gateway.post(
        "/hooks/v1/demo/fin-1", content=body, headers=standard_headers("evt_rs256", body)
    )
    assert answer.status_code == 200, answer.content
    listed = await stack.integration.ListReceivedWebhooks(pb.ListReceivedWebhooksRequest(), metadata=md())
    assert [r.external_event_id for r in listed.received_webhooks] == ["evt_rs256"]
