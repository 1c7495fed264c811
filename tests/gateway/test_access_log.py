"""gateway.access_log writes the line logging would write (kit.telemetry's JSON), and goes through
logging itself whenever the set-up is not the plain one (another handler, a filter, a level)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry import trace

from gateway import access_log as access
from kit.telemetry import JsonFormatter

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")


@contextmanager
def plain() -> Iterator[io.StringIO]:
    """The root logger as kit.telemetry.setup_logging leaves it, writing to a buffer (entered in
    the test's body: pytest adds its own capture handlers to the root for each test phase)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, root.filters[:]
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("gateway"))
    root.handlers[:] = [handler]
    root.filters[:] = []
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.handlers[:], root.filters[:] = saved[0], saved[2]
        root.setLevel(saved[1])


def _through_logging(extra: dict[str, Any]) -> None:
    """The same line forced through Logger.handle: a filter that lets everything pass."""
    passing = logging.Filter()
    access.access_log.addFilter(passing)
    try:
        access.write("GET", "/v1/leads/L1", 200, dict(extra))
    finally:
        access.access_log.removeFilter(passing)


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


EXTRAS = [
    {"request_id": "01J000", "status": 200, "duration_ms": 1.25},
    {"request_id": "r-2", "status": 0, "duration_ms": 0.0, "trace_id": "ab" * 16},
    {"request_id": "电话", "status": 503, "duration_ms": 12.5, "odd": object.__new__(object)},
]


@pytest.mark.parametrize("extra", EXTRAS)
@pytest.mark.parametrize("in_span", [False, True])
def test_the_same_line_as_logging_writes(extra: dict[str, Any], in_span: bool) -> None:
    ctx = trace.SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=trace.TraceFlags(1))
    span = trace.NonRecordingSpan(ctx) if in_span else trace.INVALID_SPAN
    with plain() as stream, trace.use_span(span):
        assert access._plain_handler() is not None
        access.write("GET", "/v1/leads/L1", 200, dict(extra))
        _through_logging(extra)
    direct, logged = _lines(stream)
    assert TS.match(direct.pop("ts")) and TS.match(logged.pop("ts"))
    if "odd" in extra:  # a repr names the object's address: the same object, the same text
        assert direct["odd"] == logged["odd"] == repr(extra["odd"])
    assert list(direct.items()) == list(logged.items())  # same keys, same order, same values
    assert direct["msg"] == "GET /v1/leads/L1 200" and direct["level"] == "info"
    assert ("span_id" in direct) is in_span


def test_no_log_record_is_built_in_the_plain_set_up(monkeypatch: Any) -> None:
    def refuse(*_args: Any, **_kw: Any) -> logging.LogRecord:
        raise AssertionError("a LogRecord was built")

    monkeypatch.setattr(access.access_log, "makeRecord", refuse)
    with plain() as stream:
        access.write("GET", "/v1/whoami", 200, {"request_id": "r"})
    assert _lines(stream)[0]["msg"] == "GET /v1/whoami 200"


def test_another_handler_gets_the_record() -> None:
    got: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            got.append(record)

    with plain() as stream:
        logging.getLogger().addHandler(Keep())
        access.write("POST", "/v1/leads", 201, {"request_id": "r-9", "status": 201})
    (record,) = got
    assert record.getMessage() == "POST /v1/leads 201" and record.request_id == "r-9"  # type: ignore[attr-defined]
    assert _lines(stream)[0]["request_id"] == "r-9"  # and the stream its line, once


def test_a_filter_on_the_way_is_applied() -> None:
    class Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return False

    with plain() as stream:
        logging.getLogger().handlers[0].addFilter(Drop())
        access.write("GET", "/v1/whoami", 200, {"request_id": "r"})
    assert stream.getvalue() == ""


def test_nothing_below_info() -> None:
    with plain() as stream:
        logging.getLogger().setLevel(logging.WARNING)
        access.write("GET", "/v1/whoami", 200, {"request_id": "r"})
    assert stream.getvalue() == ""


def test_a_record_factory_is_applied() -> None:
    """A factory (OpenTelemetry's logging instrumentation installs one) adds fields to every record."""
    made = logging.getLogRecordFactory()

    def stamped(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = made(*args, **kwargs)
        record.stamp = "from-factory"
        return record

    logging.setLogRecordFactory(stamped)
    try:
        with plain() as stream:
            assert access._plain_handler() is None
            access.write("GET", "/v1/whoami", 200, {"request_id": "r"})
    finally:
        logging.setLogRecordFactory(made)
    assert _lines(stream)[0]["stamp"] == "from-factory"
