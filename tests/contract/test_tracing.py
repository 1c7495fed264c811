"""Traces cross process boundaries: client span -> gRPC metadata -> server span; logs carry the trace id."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from deploy.local.infra import free_port
from kit.auth import AuthConfig, TokenMinter, TokenVerifier
from kit.config import GrpcSettings
from kit.grpc import diagnostics
from kit.grpc.client import channel
from kit.grpc.server import GrpcServer
from kit.telemetry import JsonFormatter
from salesops.common.v1 import diagnostics_pb2, diagnostics_pb2_grpc

CONFIG = AuthConfig.from_env({})


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    # The global provider can be set once per process: join the one an earlier test of this
    # worker installed (the gateway tests call setup_tracing), else install ours.
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        current.add_span_processor(SimpleSpanProcessor(memory))
    else:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        trace.set_tracer_provider(provider)
    yield memory


async def test_server_span_continues_the_callers_trace(exporter: InMemorySpanExporter) -> None:
    settings = GrpcSettings(f"127.0.0.1:{free_port()}", False, 1.0, 5.0, 4 << 20, 30_000, 10_000)
    server = GrpcServer("leads", settings, TokenVerifier(CONFIG), [diagnostics.registration("leads")])
    await server.start()
    token = TokenMinter(CONFIG).mint("rep-a1", "demo", ["rep"])
    try:
        tracer = trace.get_tracer("test")
        with tracer.start_as_current_span("mobile-tap") as root:
            async with channel(server.address, token_source=lambda: token) as ch:
                await diagnostics_pb2_grpc.DiagnosticsServiceStub(ch).WhoAmI(diagnostics_pb2.WhoAmIRequest())
        trace_id = root.get_span_context().trace_id
    finally:
        await server.stop(0)
    spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
    kinds = {s.kind for s in spans}
    assert {SpanKind.CLIENT, SpanKind.SERVER} <= kinds
    server_span = next(s for s in spans if s.kind == SpanKind.SERVER)
    assert server_span.attributes is not None
    assert server_span.attributes["enduser.id"] == "rep-a1"
    assert server_span.attributes["salesops.tenant"] == "demo"


def test_json_log_lines_carry_the_trace_id(exporter: InMemorySpanExporter) -> None:
    formatter = JsonFormatter("leads")
    with trace.get_tracer("test").start_as_current_span("work") as span:
        record = logging.LogRecord("salesops.x", logging.INFO, __file__, 1, "lead %s routed", ("L1",), None)
        record.lead_id = "L1"
        line = json.loads(formatter.format(record))
    assert line["msg"] == "lead L1 routed"
    assert line["service"] == "leads"
    assert line["lead_id"] == "L1"
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
