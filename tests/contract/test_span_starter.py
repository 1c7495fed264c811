"""kit.telemetry.SpanStarter: spans nobody receives are made as their context only, the same ids
and flags the SDK would give; with a processor they are recorded as before."""

from __future__ import annotations

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, TraceIdRatioBased
from opentelemetry.trace import SpanKind, TraceFlags

from kit.telemetry import SpanStarter

PARENT_TRACE = 0x0AF7651916CD43DD8448EB211C80319C
ATTRS = {"rpc.system": "grpc", "rpc.method": "/a.B/C"}


def _remote(sampled: bool) -> Context:
    flags = "01" if sampled else "00"
    return propagate.extract({"traceparent": f"00-{PARENT_TRACE:032x}-b7ad6b7169203331-{flags}"})


def test_without_a_processor_the_span_is_its_context_only() -> None:
    provider = TracerProvider()
    spans = SpanStarter("t", lambda: provider)
    span = spans.start("/a.B/C", _remote(True), SpanKind.SERVER, ATTRS)
    ctx = span.get_span_context()
    assert not span.is_recording()
    assert ctx.is_valid and not ctx.is_remote
    assert ctx.trace_id == PARENT_TRACE  # continues the caller's trace
    assert ctx.span_id != 0xB7AD6B7169203331
    assert ctx.trace_flags.sampled
    # Same flags as the SDK gives a span of that parent.
    sdk = provider.get_tracer("t").start_span("/a.B/C", _remote(True), SpanKind.SERVER)
    assert sdk.get_span_context().trace_flags == ctx.trace_flags


def test_without_a_processor_a_root_span_gets_a_new_trace_and_the_sampler_decides() -> None:
    root = SpanStarter("t", lambda: TracerProvider()).start("/a.B/C", _remote(False), SpanKind.SERVER, ATTRS)
    assert not root.get_span_context().trace_flags.sampled  # the parent said not sampled
    fresh = SpanStarter("t", lambda: TracerProvider()).start(
        "/a.B/C", trace.set_span_in_context(trace.INVALID_SPAN), SpanKind.SERVER, ATTRS
    )
    assert fresh.get_span_context().is_valid and fresh.get_span_context().trace_id != PARENT_TRACE
    assert fresh.get_span_context().trace_flags.sampled
    off = SpanStarter("t", lambda: TracerProvider(sampler=ALWAYS_OFF))
    assert (
        off.start("/a.B/C", _remote(True), SpanKind.SERVER, ATTRS).get_span_context().trace_flags.sampled
        is False
    )
    ratio = SpanStarter("t", lambda: TracerProvider(sampler=TraceIdRatioBased(0.0)))
    new_root = ratio.start("/a.B/C", trace.set_span_in_context(trace.INVALID_SPAN), SpanKind.SERVER, ATTRS)
    assert new_root.get_span_context().trace_flags & TraceFlags.SAMPLED == 0


def test_a_processor_added_later_gets_recorded_spans() -> None:
    provider = TracerProvider()
    spans = SpanStarter("t", lambda: provider)
    assert not spans.start("/a.B/C", _remote(True), SpanKind.SERVER, ATTRS).is_recording()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    span = spans.start("/a.B/C", _remote(True), SpanKind.SERVER, ATTRS)
    assert span.is_recording()
    span.set_attribute("enduser.id", "rep-a1")
    span.end()
    (done,) = memory.get_finished_spans()
    assert isinstance(done, ReadableSpan)
    assert done.context is not None and done.context.trace_id == PARENT_TRACE
    assert done.kind == SpanKind.SERVER
    assert done.attributes == {**ATTRS, "enduser.id": "rep-a1"}


def test_without_the_sdk_the_api_decides() -> None:
    span = SpanStarter("t", lambda: trace.NoOpTracerProvider()).start(
        "/a.B/C",
        _remote(True),
        SpanKind.SERVER,
        ATTRS,
    )
    assert not span.is_recording()
    assert span.get_span_context().trace_id == PARENT_TRACE  # the no-op tracer keeps the parent's
