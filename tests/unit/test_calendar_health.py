"""The calendar coverage warning in the readiness details and the Health/Check trailer."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kit.calendar import BusinessCalendar, calendar_from_env, coverage_warning
from kit.grpc.health import (
    DETAILS_TRAILER,
    DetailedHealthServicer,
    ReadinessMonitor,
    business_calendar_advisory,
)


async def _ok() -> None:
    return None


def _gap_advisory() -> str | None:
    return coverage_warning(date(2026, 12, 6))


async def test_warning_is_in_details_and_in_the_check_trailer(caplog: pytest.LogCaptureFixture) -> None:
    expected = coverage_warning(date(2026, 12, 6), BusinessCalendar())
    servicer = DetailedHealthServicer()
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        monitor = ReadinessMonitor(
            servicer, ["x.v1.X"], {"database": _ok}, advisories={"calendar": _gap_advisory}
        )
        with caplog.at_level(logging.WARNING, logger="salesops.health"):
            assert await monitor.check_now()  # an advisory never makes the process unready
        assert monitor.details() == {"serving": True, "failing": {}, "warnings": {"calendar": expected}}
        assert any("calendar" in r.getMessage() for r in caplog.records)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
            answer = await call
            trailers = dict(await call.trailing_metadata())  # type: ignore[arg-type]
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        details = json.loads(trailers[DETAILS_TRAILER])
        assert details["warnings"] == {"calendar": expected}
        assert "2027" in details["warnings"]["calendar"]
    finally:
        await server.stop(None)


async def test_cleared_advisory_leaves_the_details() -> None:
    state: dict[str, str | None] = {"text": "calendar gap"}
    monitor = ReadinessMonitor(
        DetailedHealthServicer(), [], {}, advisories={"calendar": lambda: state["text"]}, advisory_interval=0
    )
    await monitor.check_now()
    assert monitor.details()["warnings"] == {"calendar": "calendar gap"}
    state["text"] = None
    await monitor.check_now()
    assert monitor.details()["warnings"] == {}


def test_business_calendar_advisory_uses_the_deployment_calendar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SALESOPS_BUSINESS_CALENDAR", raising=False)
    calendar = calendar_from_env()
    assert business_calendar_advisory() == coverage_warning(datetime.now(calendar.zone).date(), calendar)
    monkeypatch.setenv("SALESOPS_BUSINESS_CALENDAR", '{"use_cn_holidays": false}')
    assert business_calendar_advisory() is None
    monkeypatch.setenv("SALESOPS_BUSINESS_CALENDAR", '{"beyond_cn_data": "guess"}')
    text = business_calendar_advisory()
    assert text is not None and "invalid" in text
