"""Tracing and JSON logs, configured by the standard OTEL_* variables.

A tracer provider is always installed, so trace ids exist for logs, error
references and propagation even with no collector. Spans are exported only
when asked: OTEL_TRACES_EXPORTER=otlp|console (or OTEL_EXPORTER_OTLP_ENDPOINT
set); OTEL_SDK_DISABLED=true turns the SDK off entirely.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import Tracer, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

_configured = False


def _exporter() -> SpanExporter | None:
    choice = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not choice and os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        choice = "otlp"
    if choice in ("", "none"):
        return None
    if choice == "console":
        return ConsoleSpanExporter(out=sys.stderr)
    if choice == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    raise ValueError(f"OTEL_TRACES_EXPORTER={choice!r} is not supported (otlp, console, none)")


def setup_tracing(service_name: str) -> None:
    global _configured
    if _configured or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return
    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", f"salesops-{service_name}")}
    )
    resource = resource.merge(OTELResourceDetector().detect())
    provider = TracerProvider(resource=resource)
    exporter = _exporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _configured = True


def shutdown_tracing() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


class SpanStarter:
    """Starts the spans of one instrumentation scope, cheaply when nothing would receive them.

    With the SDK installed but no span processor (no exporter configured: the default), a
    recorded span reaches no one, yet building it was ~35 us of a gRPC call's CPU. Such a span
    is made as its context only: trace id (the parent's, else a new one), a new span id and the
    sampler's flags, exactly as the SDK derives them, so log lines, error references and the
    traceparent sent downstream stay the same. With a processor (an exporter, or a test's
    in-memory one, added at any time) spans are recorded as before; checked on every call.
    """

    def __init__(
        self, scope: str, provider: Callable[[], trace.TracerProvider] = trace.get_tracer_provider
    ) -> None:
        self.scope = scope
        self._current = provider  # the global one; a test passes its own
        self._provider: trace.TracerProvider | None = None
        self._tracer: trace.Tracer = trace.NoOpTracer()

    def start(
        self,
        name: str,
        context: otel_context.Context,
        kind: trace.SpanKind,
        attributes: dict[str, Any],
    ) -> trace.Span:
        provider = self._current()
        if provider is not self._provider:  # set once at startup (tests may swap it)
            self._provider, self._tracer = provider, provider.get_tracer(self.scope)
        tracer = self._tracer
        # `_span_processors` and `_is_enabled` are the SDK's own: read defensively, anything
        # unexpected takes the SDK's full path.
        if (
            not isinstance(tracer, Tracer)
            or getattr(tracer.span_processor, "_span_processors", True)
            or not tracer._is_enabled()
        ):
            return tracer.start_span(name, context, kind, attributes)
        return _context_only(tracer, name, context, kind, attributes)


def _context_only(
    sdk: Tracer, name: str, context: otel_context.Context, kind: trace.SpanKind, attributes: dict[str, Any]
) -> trace.Span:
    """What `Tracer.start_span` yields, minus the recording: the ids and flags it would derive."""
    parent = trace.get_current_span(context).get_span_context()
    if not parent.is_valid:
        trace_id = sdk.id_generator.generate_trace_id()
        random_id = sdk.id_generator.is_trace_id_random()
    else:
        trace_id, random_id = parent.trace_id, parent.trace_flags.random_trace_id
    sampled = sdk.sampler.should_sample(context, trace_id, name, kind, attributes, ())
    is_sampled: bool = sampled.decision.is_sampled()  # type: ignore[no-untyped-call]
    flags = trace.TraceFlags.SAMPLED if is_sampled else trace.TraceFlags.DEFAULT
    if random_id:
        flags |= trace.TraceFlags.RANDOM_TRACE_ID
    return trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id,
            sdk.id_generator.generate_span_id(),
            is_remote=False,
            trace_flags=trace.TraceFlags(flags),
            trace_state=sampled.trace_state,
        )
    )


_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# json.dumps with any non-default option builds a new encoder per call: one line per request
# (the access log) made that a measurable share of the gateway's CPU.
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the current trace and span ids."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        return self.line(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            [(k, v) for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")],
            self.formatException(record.exc_info) if record.exc_info else None,
        )

    def line(
        self,
        created: float,
        levelname: str,
        logger: str,
        msg: str,
        extra: Iterable[tuple[str, Any]],
        exc: str | None = None,
    ) -> str:
        """The line of a record with these fields (`extra`: its own attributes, in order): what
        `format` writes, callable without building a LogRecord (the gateway's access line)."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
            "level": levelname.lower(),
            "service": self.service,
            "logger": logger,
            "msg": msg,
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            entry["trace_id"] = format(ctx.trace_id, "032x")
            entry["span_id"] = format(ctx.span_id, "016x")
        for key, value in extra:
            entry[key] = value if isinstance(value, str | int | float | bool | None) else repr(value)
        if exc is not None:
            entry["exc"] = exc
        return _ENCODE(entry)


def setup_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Third-party chatter at INFO drowns our own lines.
    for noisy in ("temporalio", "sqlalchemy.engine", "httpx", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
