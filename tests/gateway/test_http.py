"""The gateway over real HTTP in front of real gRPC servers (kit pipeline): transcoding, errors, auth, ops."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from gateway.errors import HTTP_BY_CODE
from kit.auth import AuthConfig, TokenMinter
from tests.gateway.conftest import MINTER, GatewayFactory, Running, auth, token

# The table of ARCHITECTURE.md.
EXPECTED_HTTP = {
    "cancelled": 499,
    "unknown": 500,
    "invalid_argument": 400,
    "deadline_exceeded": 504,
    "not_found": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "resource_exhausted": 429,
    "failed_precondition": 400,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
    "unauthenticated": 401,
}


async def test_get_with_path_variable_and_query(gw: Running) -> None:
    r = await gw.client.get("/v1/leads/L1", params={"view": "LEAD_VIEW_BASIC"}, headers=auth("rep-b2"))
    assert r.status_code == 200, r.text
    assert r.json() == {"lead": {"leadId": "L1", "description": "LEAD_VIEW_BASIC", "ownerUserId": "rep-b2"}}
    assert r.headers["content-type"] == "application/json"


async def test_list_with_repeated_and_nested_query(gw: Running) -> None:
    params = [
        ("pageSize", "7"),
        ("orderBy", "score desc"),
        ("filter.ownerUserIds", "a"),
        ("filter.owner_user_ids", "b"),
        ("filter.statuses", "LEAD_STATUS_IN_POOL"),
        ("filter.teamPath", "east"),
    ]
    r = await gw.client.get("/v1/leads", params=params, headers=auth())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totalSize"] == 7
    assert [(x["leadId"], x["status"], x["teamPath"], x["displayName"]) for x in body["leads"]] == [
        ("a", "LEAD_STATUS_IN_POOL", "east", "score desc"),
        ("b", "LEAD_STATUS_IN_POOL", "east", "score desc"),
    ]


async def test_post_body_field(gw: Running) -> None:
    lead = {"displayName": "Acme", "tags": ["vip"], "contact": {"phone": "+8613800000000"}}
    r = await gw.client.post("/v1/leads", json=lead, headers=auth())
    assert r.status_code == 200, r.text
    assert r.json()["lead"] == {**lead, "leadId": "L1"}


async def test_patch_nested_path_variable_body_and_field_mask(gw: Running) -> None:
    r = await gw.client.patch(
        "/v1/leads/L9", params={"updateMask": "displayName,tags"}, json={"displayName": "N"}, headers=auth()
    )
    assert r.status_code == 200, r.text
    assert r.json()["lead"] == {"leadId": "L9", "displayName": "N", "description": "display_name,tags"}


async def test_body_star_with_custom_verb(gw: Running) -> None:
    r = await gw.client.post("/v1/leads/P1:claim", json={}, headers=auth("rep-c3", "acme"))
    assert r.status_code == 200, r.text
    assert r.json() == {
        "lead": {"leadId": "P1", "ownerUserId": "rep-c3", "teamPath": "acme"},
        "decisionId": "D1",
    }


@pytest.mark.parametrize("code_name", sorted(EXPECTED_HTTP))
async def test_every_grpc_code_maps_to_http_with_a_status_body(gw: Running, code_name: str) -> None:
    assert HTTP_BY_CODE.get(grpc.StatusCode[code_name.upper()], 500) == EXPECTED_HTTP[code_name]
    r = await gw.client.post(f"/v1/leads/{code_name}:claim", json={}, headers=auth())
    assert r.status_code == EXPECTED_HTTP[code_name], r.text
    body = r.json()
    assert body["code"] == grpc.StatusCode[code_name.upper()].value[0]
    assert body["message"] == f"forced {code_name}"


async def test_error_details_are_forwarded(gw: Running) -> None:
    r = await gw.client.post("/v1/leads/gate:claim", json={}, headers=auth())
    assert r.status_code == 400
    detail = r.json()["details"][0]
    assert detail["@type"] == "type.googleapis.com/google.rpc.PreconditionFailure"
    assert detail["violations"] == [
        {"type": "DAILY_CLAIM_CAP", "subject": "rep-a1", "description": "10 per day"}
    ]
    r = await gw.client.post("/v1/leads/invalid:claim", json={}, headers=auth())
    assert r.status_code == 400
    assert r.json()["details"][0]["fieldViolations"] == [{"field": "lead_id", "description": "not a lead id"}]
    r = await gw.client.get("/v1/leads/missing", headers=auth())
    assert r.status_code == 404 and r.json()["details"][0]["resourceType"] == "lead"


async def test_service_retry_info_becomes_retry_after(gw: Running) -> None:
    r = await gw.client.post("/v1/leads/capped:claim", json={}, headers=auth())
    assert r.status_code == 429 and r.headers["retry-after"] == "91"
    types = [d["@type"].rsplit(".", 1)[-1] for d in r.json()["details"]]
    assert "QuotaFailure" in types and "RetryInfo" in types


async def test_a_service_bug_is_500_without_internals(gw: Running) -> None:
    r = await gw.client.post("/v1/leads/crash:claim", json={}, headers=auth())
    assert r.status_code == 500
    assert r.json()["code"] == 13 and "a bug" not in r.text and "reference" in r.json()["message"]


async def test_unimplemented_rpc_is_501_and_down_service_is_503(gw: Running) -> None:
    r = await gw.client.post("/v1/leads/L1:release", json={}, headers=auth())
    assert r.status_code == 501 and r.json()["code"] == 12
    r = await gw.client.get("/v1/deals", headers=auth())
    assert r.status_code == 503 and r.json()["code"] == 14


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    [
        ("post", "/v1/leads", {"content": b"{not json"}, ""),
        ("post", "/v1/leads", {"content": b'{"displayName": {"a": 1}}'}, "lead.displayName"),
        (
            "post",
            "/v1/leads",
            {"content": b'{"source": {"channel": "NO_SUCH_CHANNEL"}}'},
            "lead.source.channel",
        ),
        ("post", "/v1/leads/x:claim", {"content": b"[]"}, ""),
        ("get", "/v1/leads?pageSize=many", {}, "page_size"),
        ("get", "/v1/leads?filter.statuses=NOPE", {}, "filter.statuses"),
        ("get", "/v1/leads?unknownParam=1", {}, "unknownParam"),
        ("get", "/v1/leads?filter.unknown=1", {}, "filter.unknown"),
    ],
)
async def test_bad_input_is_400_with_field_violations(
    gw: Running, method: str, path: str, kwargs: dict[str, bytes], field: str
) -> None:
    headers = {**auth(), "Content-Type": "application/json"}
    r = await gw.client.request(method.upper(), path, headers=headers, **kwargs)  # type: ignore[arg-type]
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == 3
    violations = body["details"][0]["fieldViolations"]
    assert violations[0].get("field", "") == field and violations[0]["description"]
    assert gw.leads.metadata == []  # nothing reached the service


def _expired() -> str:
    past = TokenMinter(AuthConfig.from_env({}), clock=lambda: datetime.now(UTC) - timedelta(hours=2))
    return past.mint("rep-a1", "demo", ["rep"], ttl=timedelta(hours=1))


def _tampered() -> str:
    return MINTER.mint("rep-a1", "demo", ["rep"]).rsplit(".", 1)[0] + ".c2ln"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("Bearer", "missing"),
        ("Basic dXNlcjpwYXNz", "malformed"),
        ("Bearer not-a-jwt", "malformed"),
        ("Bearer " + _expired(), "expired"),
        ("Bearer " + _tampered(), "bad_signature"),
        (
            "Bearer "
            + TokenMinter(
                AuthConfig.from_env({"SALESOPS_JWT_SECRET": "another-secret-of-at-least-32-bytes!"})
            ).mint("rep-a1", "demo", ["rep"]),
            "bad_signature",
        ),
    ],
)
async def test_missing_or_bad_token_is_401_with_www_authenticate(
    gw: Running, header: str | None, reason: str
) -> None:
    headers = {} if header is None else {"Authorization": header}
    r = await gw.client.get("/v1/whoami", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith('Bearer realm="salesops"')
    if reason != "missing":
        assert f'error_description="{reason}"' in r.headers["www-authenticate"]
    assert r.json() == {"code": 16, "message": f"authentication failed: {reason}"}
    assert gw.leads.metadata == []


async def test_token_and_request_id_and_trace_are_forwarded(gw: Running) -> None:
    tok = token("rep-z9")
    r = await gw.client.get(
        "/v1/leads/L1", headers={"Authorization": f"Bearer {tok}", "X-Request-ID": "req-123"}
    )
    assert r.status_code == 200 and r.headers["x-request-id"] == "req-123"
    seen = gw.leads.metadata[-1]
    assert seen["authorization"] == f"Bearer {tok}"
    assert seen["x-request-id"] == "req-123"
    assert seen["traceparent"].startswith("00-")
    r = await gw.client.get("/v1/leads/L1", headers=auth())
    assert len(r.headers["x-request-id"]) == 26  # a ULID is made when the client sends none


async def test_request_id_is_logged(gw: Running, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="salesops.gateway.access"):
        await gw.client.get("/v1/leads/L1", headers={**auth(), "X-Request-ID": "log-me-1"})
    [line] = [rec for rec in caplog.records if getattr(rec, "request_id", "") == "log-me-1"]
    assert line.status == 200  # type: ignore[attr-defined]
    # The access line carries the trace the service continued (same trace id in its traceparent).
    assert gw.leads.metadata[-1]["traceparent"].split("-")[1] == line.trace_id  # type: ignore[attr-defined]


async def test_unknown_path_404_and_wrong_method_405(gw: Running) -> None:
    r = await gw.client.get("/v1/nothing-here", headers=auth())
    assert r.status_code == 404 and r.json()["code"] == 5
    r = await gw.client.delete("/v1/leads/L1:claim", headers=auth())
    assert r.status_code == 405 and "POST" in r.headers["allow"]


async def test_body_over_the_limit_is_413(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(max_body_bytes=1000) as gw:
        big = {"displayName": "x" * 2000}
        r = await gw.client.post("/v1/leads", json=big, headers=auth())
        assert r.status_code == 413
        assert gw.leads.created == 0

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(10):
                yield b" " * 200

        r = await gw.client.post("/v1/leads", content=chunks(), headers=auth())  # no Content-Length
        assert r.status_code == 413


async def test_gzip_for_large_responses(gw: Running) -> None:
    params = [("filter.ownerUserIds", f"owner-{i}") for i in range(100)]
    r = await gw.client.get("/v1/leads", params=params, headers={**auth(), "Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert len(r.json()["leads"]) == 100
    raw = await gw.client.get("/v1/whoami", headers={**auth(), "Accept-Encoding": "gzip"})
    assert "content-encoding" not in raw.headers  # small bodies are not worth it


async def test_cors_when_configured(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(cors_origins=("https://app.example.com",)) as gw:
        r = await gw.client.options(
            "/v1/leads",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,idempotency-key",
            },
        )
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://app.example.com"
        r = await gw.client.get("/v1/whoami", headers={**auth(), "Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in r.headers


async def test_deadline_from_configured_timeout(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(timeout_seconds=0.3) as gw:
        r = await gw.client.post("/v1/leads/slow2:claim", json={}, headers=auth())
        assert r.status_code == 504 and r.json()["code"] == 4


async def test_server_sent_events(gw: Running) -> None:
    async with gw.client.stream("GET", "/v1/inbox:stream", headers=auth()) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        text = (await r.aread()).decode()
    events = [e for e in text.split("\n\n") if e.strip()]
    assert [e.splitlines()[0] for e in events] == ["id: 1", "id: 2", "id: 3"]
    assert json.loads(events[2].splitlines()[2].removeprefix("data: ")) == {
        "cursor": "3",
        "unreadCount": {"total": 3},
    }
    # Reconnecting with Last-Event-ID resumes after it.
    async with gw.client.stream("GET", "/v1/inbox:stream", headers={**auth(), "Last-Event-ID": "10"}) as r:
        text = (await r.aread()).decode()
    assert [e.splitlines()[0] for e in text.split("\n\n") if e.strip()] == ["id: 11", "id: 12", "id: 13"]
    # An error before the first event is a plain HTTP error.
    r = await gw.client.get("/v1/inbox:stream", headers={**auth(), "Last-Event-ID": "bad"})
    assert r.status_code == 400 and r.json()["details"][0]["fieldViolations"][0]["field"] == "resume_cursor"


async def test_stream_error_after_events_is_an_error_event(gw: Running) -> None:
    async with gw.client.stream("GET", "/v1/inbox:stream", headers={**auth(), "Last-Event-ID": "fail"}) as r:
        assert r.status_code == 200
        text = (await r.aread()).decode()
    events = [e for e in text.split("\n\n") if e.strip()]
    assert events[0].startswith("id: 1\n")
    assert events[1].startswith("event: error\ndata: ")
    assert json.loads(events[1].split("data: ", 1)[1])["code"] == 14


async def test_client_disconnect_cancels_the_grpc_stream(gw: Running) -> None:
    async with gw.client.stream(
        "GET", "/v1/inbox:stream", headers={**auth(), "Last-Event-ID": "forever"}
    ) as r:
        lines = r.aiter_lines()
        assert await anext(lines) == "id: 1"
        assert await anext(lines) == "event: message"
    # The client went away: the gateway must not keep the service's stream open.
    await asyncio.wait_for(gw.notify.cancelled.wait(), 10)


async def test_healthz_and_readyz(gw: Running) -> None:
    assert (await gw.client.get("/healthz")).json() == {"status": "ok"}
    r = await gw.client.get("/readyz")
    # Three services are not running at all, so the gateway is not ready.
    assert r.status_code == 503 and r.json()["ready"] is False
    assert r.json()["services"]["pipeline"] == "UNAVAILABLE"


async def test_docs_page(gw: Running) -> None:
    r = await gw.client.get("/docs")
    assert r.status_code == 200 and "/openapi.json" in r.text
    assert "https://" not in r.text  # nothing loads from outside: offline sites and privacy
    for asset in ("/docs/static/swagger-ui-bundle.js", "/docs/static/swagger-ui.css"):
        assert asset in r.text
        served = await gw.client.get(asset)
        assert served.status_code == 200 and len(served.content) > 10_000
