"""OWASP API4 (unrestricted resource consumption) at the gateway, on the real app, real Redis
and real gRPC backends (tests/gateway/backends.py):

- deep or otherwise unreadable JSON is a 400 with a google.rpc.Status, never a 500;
- every item of `/v1/sync:batch` counts against the caller's rate limit;
- requests failing authentication are limited per client address (X-Forwarded-For believed
  only from configured proxies), and a blocked address learns nothing from a token guess;
- oversized query strings, too many query parameters and oversized headers are refused
  with 414 / 400 / 431 before routing, a giant header while it is still arriving.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import grpc
import httpx
import pytest
import redis.asyncio as redis_async
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.app import create_app
from gateway.bounds import (
    BoundedHttpToolsProtocol,
    RequestBounds,
    address_bucket,
    client_address,
    too_deep,
)
from gateway.config import GatewaySettings
from kit.config import SERVICES
from tests.gateway.conftest import Running, auth, running_gateway, serve_app, token

# Rate-limit windows an hour long: counts never straddle a window edge while a test runs.
HOUR = 3600


def _status(r: httpx.Response, http: int, code: int) -> dict[str, Any]:
    assert r.status_code == http, r.text[:300]
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    assert body["code"] == code and body["message"]
    return body


async def _raw(url: str, request: bytes) -> bytes:
    """One HTTP/1.1 exchange on a socket: httpx refuses to send requests this large."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        try:
            writer.write(request)
            await writer.drain()
        except ConnectionError:  # the server answered and closed before reading everything
            pass
        return await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()


# ---------------------------------------------------------------------- JSON


@pytest.fixture
async def gw(redis_url: str) -> Any:
    async with running_gateway(redis_url) as running:
        yield running


@pytest.mark.parametrize(
    "body",
    [
        b'{"lead":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"lead":{"labels":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}}",
        b"[" * 100_000,  # deep and unterminated
    ],
    ids=["arrays", "objects", "unterminated"],
)
async def test_deeply_nested_json_is_a_400_status(gw: Running, body: bytes) -> None:
    r = await gw.client.post(
        "/v1/leads", content=body, headers={**auth(), "Content-Type": "application/json"}
    )
    found = _status(r, 400, 3)
    assert "deeper than 64" in found["message"]
    assert gw.leads.created == 0


async def test_unreadable_json_numbers_are_a_400_status(gw: Running) -> None:
    body = b'{"lead":{"displayName":"x","estimatedValue":' + b"9" * 10_000 + b"}}"
    r = await gw.client.post(
        "/v1/leads", content=body, headers={**auth(), "Content-Type": "application/json"}
    )
    _status(r, 400, 3)


async def test_json_within_the_depth_bound_still_parses(gw: Running) -> None:
    # Brackets inside strings are text, not nesting.
    name = "[" * 500 + "{" * 500
    r = await gw.client.post("/v1/leads", json={"displayName": name}, headers=auth())
    assert r.status_code == 200 and r.json()["lead"]["displayName"] == name


async def test_deep_json_in_a_batch_is_a_400_status(gw: Running) -> None:
    item = b'{"clientId":"c1","idempotencyKey":"k1","method":"POST","path":"/v1/leads","body":'
    body = b'{"items":[' + item + b"[" * 100_000 + b"]" * 100_000 + b"}]}"
    r = await gw.client.post(
        "/v1/sync:batch", content=body, headers={**auth(), "Content-Type": "application/json"}
    )
    _status(r, 400, 3)
    assert gw.leads.created == 0


def test_depth_scan() -> None:
    assert not too_deep(b'{"a": "[[[[[[[[[[", "b": [[1]]}', 3)
    assert too_deep(b'{"a": [[[1]]]}', 3)
    assert not too_deep(b'{"a": [[1]], "b": [[2]], "c": [[3]]}', 3)
    assert not too_deep(b'["\\"[[[[[["]', 2)  # an escaped quote does not end the string


# ---------------------------------------------------------------------- the offline batch


def _batch(n: int) -> dict[str, Any]:
    return {
        "items": [
            {
                "clientId": f"c{i}",
                "idempotencyKey": f"k{i}",
                "method": "POST",
                "path": "/v1/leads",
                "body": {"displayName": f"Offline {i}"},
            }
            for i in range(n)
        ]
    }


async def test_every_batch_item_counts_against_the_rate_limit(redis_url: str) -> None:
    async with running_gateway(redis_url, user_limit=5, tenant_limit=1000, window_seconds=HOUR) as gw:
        r = await gw.client.post("/v1/sync:batch", json=_batch(10), headers=auth("rep-b1"))
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        # The batch request is one, then four items fit; the other six are refused, not applied.
        assert [x["status"] for x in results] == [200] * 4 + [429] * 6
        assert gw.leads.created == 4
        refused = results[4]["body"]
        assert refused["code"] == 8
        types = {d["@type"].rsplit(".", 1)[-1] for d in refused["details"]}
        assert {"QuotaFailure", "RetryInfo", "ErrorInfo"} <= types
        assert 1 <= int(r.headers["retry-after"]) <= 2 * HOUR
        assert '"user";r=0;' in r.headers["ratelimit"]
        # The quota is spent: a plain request is refused too.
        assert (await gw.client.get("/v1/whoami", headers=auth("rep-b1"))).status_code == 429
        # The refused items never claimed their idempotency keys: once the window has passed
        # (its counters dropped here), the client sends just those and they apply.
        store = redis_async.Redis.from_url(redis_url)
        await store.delete(*await store.keys("gw:rl:*"))
        await store.aclose()
        retry = {"items": _batch(10)["items"][4:]}
        later = await gw.client.post("/v1/sync:batch", json=retry, headers=auth("rep-b1"))
        assert [x["status"] for x in later.json()["results"]] == [200] * 4 + [429] * 2
        assert not any(x["replayed"] for x in later.json()["results"])
        assert gw.leads.created == 8


async def test_batch_refused_items_stop_the_batch_with_stop_on_failure(redis_url: str) -> None:
    async with running_gateway(redis_url, user_limit=3, tenant_limit=1000, window_seconds=HOUR) as gw:
        r = await gw.client.post("/v1/sync:batch?stopOnFailure=true", json=_batch(5), headers=auth("rep-b2"))
        assert [x["status"] for x in r.json()["results"]] == [200, 200, 429, 424, 424]
        assert gw.leads.created == 2


async def test_batch_item_paths_have_the_query_bounds(gw: Running) -> None:
    batch = _batch(1)
    batch["items"][0]["path"] = "/v1/leads?" + "&".join(["view=LEAD_VIEW_FULL"] * 300)
    r = await gw.client.post("/v1/sync:batch", json=batch, headers=auth())
    body = _status(r, 400, 3)
    assert body["details"][0]["fieldViolations"][0]["field"] == "items[0].path"


# ---------------------------------------------------------------------- unauthenticated callers


def _bounds(gw_limit: int, proxies: tuple[str, ...] = ()) -> RequestBounds:
    return replace(RequestBounds(), address_limit=gw_limit, trusted_proxies=proxies)


async def test_failed_authentication_is_limited_per_client_address(redis_url: str) -> None:
    async with running_gateway(redis_url, bounds=_bounds(5), window_seconds=HOUR) as gw:
        known = auth("rep-known")
        assert (await gw.client.get("/v1/whoami", headers=known)).status_code == 200
        bad = {"Authorization": "Bearer not.a.token"}
        for i in range(5):
            r = await gw.client.get("/v1/whoami", headers=bad if i % 2 else {})
            assert r.status_code == 401
            assert f'"address";r={4 - i};' in r.headers["ratelimit"]
        r = await gw.client.get("/v1/whoami", headers=bad)
        body = _status(r, 429, 8)
        assert 1 <= int(r.headers["retry-after"]) <= 2 * HOUR
        assert body["details"]
        # Blocked: a token this gateway never verified is not even looked at, so a guess
        # (here: a valid one) learns nothing...
        fresh = {"Authorization": f"Bearer {token('rep-new')}"}
        r = await gw.client.get("/v1/whoami", headers=fresh)
        _status(r, 429, 8)
        assert "retry-after" in r.headers
        # ...while a session this gateway already knows goes on.
        assert (await gw.client.get("/v1/whoami", headers=known)).status_code == 200


async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(redis_url: str) -> None:
    async with running_gateway(redis_url, bounds=_bounds(3), window_seconds=HOUR) as gw:
        codes = [
            (await gw.client.get("/v1/whoami", headers={"X-Forwarded-For": f"198.51.100.{i}"})).status_code
            for i in range(6)
        ]
        assert codes == [401, 401, 401, 429, 429, 429]


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(redis_url: str) -> None:
    async with running_gateway(redis_url, bounds=_bounds(2, ("127.0.0.0/8",)), window_seconds=HOUR) as gw:

        async def status(xff: str) -> int:
            return (await gw.client.get("/v1/whoami", headers={"X-Forwarded-For": xff})).status_code

        assert [await status("203.0.113.7") for _ in range(3)] == [401, 401, 429]
        # Another client behind the proxy has its own budget.
        assert await status("203.0.113.8") == 401
        # What the client itself claims (left of the hop the proxy appended) changes nothing.
        assert await status("10.9.9.9, 203.0.113.7") == 429


async def test_one_ipv6_client_is_one_address_whatever_its_interface_id(redis_url: str) -> None:
    # An IPv6 client picks any of 2^64 addresses in its /64: a per-address budget must span them.
    async with running_gateway(redis_url, bounds=_bounds(2, ("127.0.0.0/8",)), window_seconds=HOUR) as gw:

        async def status(xff: str) -> int:
            return (await gw.client.get("/v1/whoami", headers={"X-Forwarded-For": xff})).status_code

        assert [await status(f"2001:db8:1:2::{i:x}") for i in range(1, 4)] == [401, 401, 429]
        assert await status("2001:db8:1:3::1") == 401  # another /64: another client
        mapped = [await status(a) for a in ("192.0.2.9", "::ffff:192.0.2.9", "192.0.2.9")]
        assert mapped == [401, 401, 429]


def test_address_bucket() -> None:
    assert address_bucket("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64"
    assert address_bucket("::ffff:198.51.100.1") == "198.51.100.1"
    assert address_bucket("198.51.100.1") == "198.51.100.1"
    assert address_bucket("unknown") == "unknown"


def test_client_address_walks_forwarded_for_from_the_right() -> None:
    proxies = RequestBounds(trusted_proxies=("10.0.0.0/8",)).networks()
    assert client_address("10.0.0.2", ["1.2.3.4, 5.6.7.8"], proxies) == "5.6.7.8"
    assert client_address("10.0.0.2", ["1.2.3.4", "5.6.7.8, 10.0.0.9"], proxies) == "5.6.7.8"
    assert client_address("192.0.2.1", ["5.6.7.8"], proxies) == "192.0.2.1"  # not a proxy
    assert client_address("10.0.0.2", [], proxies) == "10.0.0.2"
    assert client_address("10.0.0.2", ["garbage"], proxies) == "10.0.0.2"
    assert client_address("10.0.0.2", ["5.6.7.8"], ()) == "10.0.0.2"  # no proxies configured


# ---------------------------------------------------------------------- query strings and headers


async def test_query_string_bounds(gw: Running) -> None:
    long = "filter.teamPath=" + "a" * 20_000
    _status(await gw.client.get(f"/v1/leads?{long}", headers=auth()), 414, 3)
    many = "&".join(["filter.ownerUserIds=u"] * 300)
    body = _status(await gw.client.get(f"/v1/leads?{many}", headers=auth()), 400, 3)
    assert "256" in body["message"]
    ok = "&".join(["filter.ownerUserIds=u"] * 200)
    assert (await gw.client.get(f"/v1/leads?{ok}", headers=auth())).status_code == 200


async def test_header_bounds(gw: Running) -> None:
    _status(await gw.client.get("/v1/whoami", headers={**auth(), "X-Big": "a" * 40_000}), 431, 3)
    many = {f"X-H{i}": "a" for i in range(150)}
    _status(await gw.client.get("/v1/whoami", headers={**auth(), **many}), 431, 3)


async def test_a_giant_header_is_cut_off_while_it_arrives(gw: Running) -> None:
    head = f"GET /v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: {auth()['Authorization']}\r\n".encode()
    answer = await _raw(gw.url, head + b"X-Big: " + b"a" * 4_000_000 + b"\r\n\r\n")
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b'"code":3' in rest


# ---------------------------------------------------------------------- open streams


async def test_open_streams_per_user_are_bounded(redis_url: str) -> None:
    bounds = replace(RequestBounds(), max_streams_per_user=2)
    async with running_gateway(redis_url, bounds=bounds) as gw:
        endless = {**auth("rep-s1"), "Last-Event-ID": "forever"}

        def stream(headers: dict[str, str]) -> Any:
            return gw.client.stream("GET", "/v1/inbox:stream", headers=headers)

        async with stream(endless) as one, stream(endless) as two:
            assert one.status_code == two.status_code == 200
            async with stream(endless) as three:
                assert three.status_code == 429, "a third endless stream was opened"
                body = _status(three, 429, 8) if await three.aread() else {}
                assert three.headers["retry-after"] == "5" and body
            async with stream({**auth("rep-s2"), "Last-Event-ID": "forever"}) as other:
                assert other.status_code == 200  # another user has their own budget
        # Both closed by the client: the slots come back.
        for _ in range(600):  # generous: the server notices the disconnects in its own time
            async with stream(endless) as again:
                if again.status_code == 200:
                    break
            await asyncio.sleep(0.05)
        assert again.status_code == 200


# ---------------------------------------------------------------------- slow clients


async def _answer_within(url: str, send: bytes, seconds: float) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        if send:
            writer.write(send)
            await writer.drain()
        return await asyncio.wait_for(reader.read(), seconds)  # the server answers and closes
    finally:
        writer.close()


@pytest.mark.parametrize(
    "send",
    [b"", b"GET /v1/whoami HTTP/1.1\r\nHost: x\r\nX-Slow: "],
    ids=["silent connection", "slow head"],
)
async def test_a_slow_head_is_a_408(gw: Running, monkeypatch: pytest.MonkeyPatch, send: bytes) -> None:
    monkeypatch.setattr(BoundedHttpToolsProtocol, "head_timeout", 0.5)
    answer = await _answer_within(gw.url, send, 20)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"code":4' in answer  # DEADLINE_EXCEEDED


async def test_a_slow_body_is_a_408(redis_url: str) -> None:
    bounds = replace(RequestBounds(), body_timeout_seconds=0.5)
    async with running_gateway(redis_url, bounds=bounds) as gw:
        head = (
            "POST /v1/leads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: {auth()['Authorization']}\r\nContent-Length: 100\r\n\r\n"
        )
        answer = await _answer_within(gw.url, head.encode() + b'{"displayName":', 20)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert gw.leads.created == 0


# ---------------------------------------------------------------------- /readyz (no token needed)


class CountingHealth(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.checks = 0

    async def Check(self, request: Any, context: Any) -> health_pb2.HealthCheckResponse:
        self.checks += 1
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def test_a_readyz_flood_is_not_passed_on_to_the_services(redis_url: str) -> None:
    counting = CountingHealth()
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(counting, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        settings = GatewaySettings(addresses={n: f"127.0.0.1:{port}" for n in SERVICES}, redis_url=redis_url)
        async with serve_app(create_app(settings=settings)) as url, httpx.AsyncClient(base_url=url) as c:
            answers = await asyncio.gather(*(c.get("/readyz") for _ in range(100)))
            assert {r.status_code for r in answers} == {200}
    finally:
        await server.stop(0)
    # One round of checks per second at most (a round asks each service once), however many
    # callers: before, every request asked every service (500 checks here).
    assert counting.checks <= 10 * len(SERVICES), counting.checks
