"""kit.metrics pieces against real components: the endpoint, RPC counting on a real gRPC server,
event gauges on a real Redis and database, and the Temporal SDK bridge on a real SDK runtime."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import empty_pb2
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from redis.asyncio import Redis
from sqlalchemy import MetaData

from deploy.local.infra import free_port
from kit.auth import AuthConfig, TokenVerifier
from kit.config import GrpcSettings
from kit.db import Database
from kit.events import emit, outbox_table
from kit.events.dead_letters import dlq_stream
from kit.grpc import diagnostics
from kit.grpc.client import channel
from kit.grpc.server import GrpcServer
from kit.metrics.endpoint import serve_metrics
from kit.metrics.events import EventGauges, Group, Outbox
from kit.metrics.temporal import TemporalMetrics
from salesops.common.v1 import diagnostics_pb2, diagnostics_pb2_grpc
from tests.leads.conftest import token


def test_endpoint_serves_and_a_taken_port_is_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert serve_metrics(0) is None  # off
    endpoint = serve_metrics(free_port())
    assert endpoint is not None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{endpoint.port}/metrics", timeout=10) as answer:
            assert b"process_cpu_seconds_total" in answer.read()
        with caplog.at_level(logging.WARNING, logger="salesops.metrics"):
            assert serve_metrics(endpoint.port) is None
        assert "running without it" in caplog.text
    finally:
        endpoint.close()


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_rpcs_are_counted_per_method_and_code() -> None:
    settings = GrpcSettings(f"127.0.0.1:{free_port()}", False, 1.0, 10.0, 1 << 20, 30_000, 10_000)
    server = GrpcServer(
        "leads", settings, TokenVerifier(AuthConfig.from_env({})), [diagnostics.registration("leads")]
    )
    await server.start()
    labels = {
        "grpc_service": "salesops.common.v1.DiagnosticsService",
        "grpc_method": "WhoAmI",
        "grpc_type": "unary",
    }
    ok0 = _sample("grpc_server_handled_total", **labels, grpc_code="OK")
    refused0 = _sample("grpc_server_handled_total", **labels, grpc_code="UNAUTHENTICATED")
    timed0 = _sample("grpc_server_handling_seconds_count", **labels)
    try:
        async with channel(server.address) as ch:
            stub = diagnostics_pb2_grpc.DiagnosticsServiceStub(ch)
            for _ in range(3):
                await stub.WhoAmI(
                    diagnostics_pb2.WhoAmIRequest(),
                    metadata=(("authorization", f"Bearer {token('rep-a1')}"),),
                )
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.WhoAmI(diagnostics_pb2.WhoAmIRequest())
    finally:
        await server.stop(0)
    assert _sample("grpc_server_handled_total", **labels, grpc_code="OK") - ok0 == 3
    assert _sample("grpc_server_handled_total", **labels, grpc_code="UNAUTHENTICATED") - refused0 == 1
    assert _sample("grpc_server_handling_seconds_count", **labels) - timed0 == 4


METADATA = MetaData()
OUTBOX = outbox_table(METADATA, "metrics_test_outbox")


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[Database]:
    found = Database(sqlite_url)
    async with found.engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    yield found
    await found.dispose()


async def test_event_gauges_read_backlog_lag_pending_and_dead_letters(db: Database, redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    stream, group = "salesops:events:metricstest", "metricstest-group"
    try:
        async with db.session("acme") as session:
            for _ in range(3):
                await emit(session, "test.Thing", empty_pb2.Empty(), source="test", table=OUTBOX)
            await session.commit()
        for i in range(5):
            await redis.xadd(stream, {"n": str(i)})
        await redis.xgroup_create(stream, group, id="0")
        await redis.xreadgroup(group, "c1", {stream: ">"}, count=2)  # 2 read, not acknowledged
        await redis.xadd(dlq_stream(group), {"error": "boom"})
        gauges = EventGauges(
            db, redis, outbox=Outbox(OUTBOX, stream), groups=[Group(group, [stream, "salesops:events:none"])]
        )
        await gauges.refresh()
        assert _sample("salesops_outbox_backlog", stream=stream) == 3
        assert _sample("salesops_stream_consumer_lag", stream=stream, group=group) == 3
        assert _sample("salesops_stream_consumer_pending", stream=stream, group=group) == 2
        assert _sample("salesops_dead_letters", group=group) == 1
    finally:
        await redis.aclose()


def test_temporal_sdk_metrics_are_bridged() -> None:
    bridge = TemporalMetrics()  # SDK metrics carry the core's temporal_ prefix; a meter's own do not
    meter = bridge.runtime().metric_meter
    meter.create_counter("bridge_test_polls").add(2, {"task_queue": "q1"})
    meter.create_counter("bridge_test_polls").add(3, {"task_queue": "q1"})
    meter.create_gauge("bridge_test_slots").set(7, {"worker_type": "ActivityWorker"})
    latency = meter.create_histogram_float("bridge_test_latency")
    for value in (0.002, 0.2, 42.0):
        latency.record(value, {"task_queue": "q1"})
    assert bridge.drain() >= 6
    registry = CollectorRegistry()
    registry.register(bridge)
    text = generate_latest(registry).decode()
    assert 'bridge_test_polls_total{service_name="temporal-core-sdk",task_queue="q1"} 5.0' in text
    assert 'bridge_test_slots{service_name="temporal-core-sdk",worker_type="ActivityWorker"} 7.0' in text
    assert (
        registry.get_sample_value(
            "bridge_test_latency_bucket",
            {"service_name": "temporal-core-sdk", "task_queue": "q1", "le": "0.25"},
        )
        == 2
    )
    assert (
        registry.get_sample_value(
            "bridge_test_latency_count", {"service_name": "temporal-core-sdk", "task_queue": "q1"}
        )
        == 3
    )
