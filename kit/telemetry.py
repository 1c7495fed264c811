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
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
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
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            entry["trace_id"] = format(ctx.trace_id, "032x")
            entry["span_id"] = format(ctx.span_id, "016x")
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool | None) else repr(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
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
