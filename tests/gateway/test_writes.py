"""Rate limits, idempotency and the offline batch, on real Redis."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as redis_async

from tests.gateway.conftest import GatewayFactory, Running, auth


async def test_rate_limit_per_user_with_headers(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(user_limit=5, tenant_limit=100, window_seconds=60) as gw:
        for i in range(5):
            r = await gw.client.get("/v1/whoami", headers=auth("rep-a1"))
            assert r.status_code == 200
            assert r.headers["ratelimit-policy"] == '"tenant";q=100;w=60, "user";q=5;w=60'
            assert f'"user";r={4 - i};' in r.headers["ratelimit"]
        r = await gw.client.get("/v1/whoami", headers=auth("rep-a1"))
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 120
        assert '"user";r=0;' in r.headers["ratelimit"]
        body = r.json()
        assert body["code"] == 8
        types = {d["@type"].rsplit(".", 1)[-1] for d in body["details"]}
        assert {"QuotaFailure", "RetryInfo", "ErrorInfo"} <= types
        # Another user of the same tenant has their own budget.
        assert (await gw.client.get("/v1/whoami", headers=auth("rep-b2"))).status_code == 200


async def test_one_tenants_flood_does_not_touch_another(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(user_limit=0, tenant_limit=20, window_seconds=60) as gw:
        flood = await asyncio.gather(
            *(gw.client.get("/v1/whoami", headers=auth(f"u{i}", "noisy")) for i in range(40))
        )
        codes = [r.status_code for r in flood]
        assert codes.count(200) == 20 and codes.count(429) == 20
        started = time.perf_counter()
        quiet = [await gw.client.get("/v1/whoami", headers=auth("q1", "quiet")) for _ in range(10)]
        assert [r.status_code for r in quiet] == [200] * 10
        assert time.perf_counter() - started < 5
        assert '"tenant";r=10;' in quiet[-1].headers["ratelimit"]


async def test_idempotent_replay(gw: Running) -> None:
    headers = {**auth(), "Idempotency-Key": "k-1"}
    first = await gw.client.post("/v1/leads", json={"displayName": "Acme"}, headers=headers)
    again = await gw.client.post("/v1/leads", json={"displayName": "Acme"}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() == {"lead": {"displayName": "Acme", "leadId": "L1"}}
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert gw.leads.applied["create:Acme"] == 1
    # Kept 24 h.
    store = redis_async.Redis.from_url(gw.settings.redis_url)
    keys = await store.keys("gw:idem:*")
    assert len(keys) == 1 and 86_000 < await store.ttl(keys[0]) <= 86_400
    await store.aclose()
    # The key is scoped to the user: another rep's same key is a different request.
    other = await gw.client.post(
        "/v1/leads", json={"displayName": "Acme"}, headers={**auth("rep-b2"), "Idempotency-Key": "k-1"}
    )
    assert other.json()["lead"]["leadId"] == "L2" and gw.leads.applied["create:Acme"] == 2
    # Without a key nothing is deduplicated.
    await gw.client.post("/v1/leads", json={"displayName": "Acme"}, headers=auth())
    assert gw.leads.applied["create:Acme"] == 3


async def test_client_errors_are_replayed_server_errors_are_not(gw: Running) -> None:
    headers = {**auth(), "Idempotency-Key": "k-err"}
    r1 = await gw.client.post("/v1/leads/not_found:claim", json={}, headers=headers)
    r2 = await gw.client.post("/v1/leads/not_found:claim", json={}, headers=headers)
    assert r1.status_code == r2.status_code == 404 and r2.headers.get("idempotent-replayed") == "true"
    headers = {**auth(), "Idempotency-Key": "k-503"}
    r1 = await gw.client.post("/v1/leads/unavailable:claim", json={}, headers=headers)
    r2 = await gw.client.post("/v1/leads/unavailable:claim", json={}, headers=headers)
    assert r1.status_code == r2.status_code == 503 and "idempotent-replayed" not in r2.headers


async def test_same_json_in_another_layout_is_the_same_request(gw: Running) -> None:
    headers = {**auth(), "Idempotency-Key": "k-layout", "Content-Type": "application/json"}
    first = await gw.client.post("/v1/leads", content=b'{"displayName":"Z","tags":["a"]}', headers=headers)
    again = await gw.client.post(
        "/v1/leads", content=b'{ "tags": ["a"],\n  "displayName": "Z" }', headers=headers
    )
    assert first.status_code == again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert gw.leads.applied["create:Z"] == 1


async def test_custom_method_without_a_body(gw: Running) -> None:
    r = await gw.client.post("/v1/leads/E1:claim", headers=auth())
    assert r.status_code == 200 and r.json()["lead"]["leadId"] == "E1"


async def test_same_key_other_body_is_422(gw: Running) -> None:
    headers = {**auth(), "Idempotency-Key": "k-2"}
    assert (await gw.client.post("/v1/leads", json={"displayName": "A"}, headers=headers)).status_code == 200
    r = await gw.client.post("/v1/leads", json={"displayName": "B"}, headers=headers)
    assert r.status_code == 422
    assert r.json()["code"] == 3 and r.json()["details"][0]["reason"] == "IDEMPOTENCY_KEY_REUSED"
    assert gw.leads.applied["create:B"] == 0


async def test_same_key_while_running_is_409(gw: Running) -> None:
    headers = {**auth(), "Idempotency-Key": "k-3"}
    first = asyncio.create_task(gw.client.post("/v1/leads/slow0.5:claim", json={}, headers=headers))
    await asyncio.sleep(0.2)
    second = await gw.client.post("/v1/leads/slow0.5:claim", json={}, headers=headers)
    assert second.status_code == 409
    assert second.json()["details"][0]["reason"] == "IDEMPOTENCY_IN_FLIGHT"
    assert (await first).status_code == 200
    third = await gw.client.post("/v1/leads/slow0.5:claim", json={}, headers=headers)
    assert third.status_code == 200 and third.headers["idempotent-replayed"] == "true"
    assert gw.leads.applied["claim:slow0.5"] == 1


async def test_bad_idempotency_key_is_400(gw: Running) -> None:
    r = await gw.client.post(
        "/v1/leads", json={"displayName": "A"}, headers={**auth(), "Idempotency-Key": "x" * 300}
    )
    assert r.status_code == 400 and gw.leads.created == 0


BATCH = {
    "items": [
        {
            "clientId": "c1",
            "idempotencyKey": "i1",
            "method": "POST",
            "path": "/v1/leads",
            "body": {"displayName": "Off1"},
        },
        {
            "clientId": "c2",
            "idempotencyKey": "i2",
            "method": "POST",
            "path": "/v1/leads/P9:claim",
            "body": {},
        },
        {
            "clientId": "c3",
            "idempotencyKey": "i3",
            "method": "POST",
            "path": "/v1/leads/not_found:claim",
            "body": {},
        },
        {
            "clientId": "c4",
            "idempotencyKey": "i4",
            "method": "PATCH",
            "path": "/v1/leads/P9?updateMask=description",
            "body": {"description": "met at expo"},
        },
    ]
}


async def test_offline_batch_applies_in_order_and_replays_once(gw: Running) -> None:
    r = await gw.client.post("/v1/sync:batch", json=BATCH, headers=auth())
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [(x["clientId"], x["status"], x["replayed"]) for x in results] == [
        ("c1", 200, False),
        ("c2", 200, False),
        ("c3", 404, False),
        ("c4", 200, False),
    ]
    assert results[0]["body"]["lead"]["leadId"] == "L1"
    assert results[3]["body"]["lead"]["description"] == "description"
    order = [m.get("x-request-id", "").rsplit("/", 1)[-1] for m in gw.leads.metadata]
    assert order == ["c1", "c2", "c3", "c4"]
    # The phone never saw the answer and sends the same batch again: nothing is applied twice.
    again = await gw.client.post("/v1/sync:batch", json=BATCH, headers=auth())
    replay = again.json()["results"]
    assert [(x["status"], x["replayed"]) for x in replay] == [
        (200, True),
        (200, True),
        (404, True),
        (200, True),
    ]
    assert [x["body"] for x in replay] == [x["body"] for x in results]
    assert gw.leads.applied == {"create:Off1": 1, "claim:P9": 1, "update:P9": 1}


async def test_batch_stop_on_failure_and_validation(gw: Running) -> None:
    r = await gw.client.post("/v1/sync:batch?stopOnFailure=true", json=BATCH, headers=auth("rep-s1"))
    assert [x["status"] for x in r.json()["results"]] == [200, 200, 404, 424]
    assert gw.leads.applied["update:P9"] == 0
    bad = {"items": [{"clientId": "c1", "method": "POST", "path": "/v1/leads"}]}
    r = await gw.client.post("/v1/sync:batch", json=bad, headers=auth())
    assert (
        r.status_code == 400
        and r.json()["details"][0]["fieldViolations"][0]["field"] == "items[0].idempotencyKey"
    )
    r = await gw.client.post("/v1/sync:batch", json=BATCH)
    assert r.status_code == 401


async def test_redis_down_rate_limits_fail_open_idempotent_writes_refused(
    gateway_factory: GatewayFactory,
) -> None:
    from deploy.local.infra import free_port

    async with gateway_factory(redis_url=f"redis://127.0.0.1:{free_port()}/0") as gw:
        r = await gw.client.get("/v1/whoami", headers=auth())
        assert r.status_code == 200 and "ratelimit" not in r.headers
        r = await gw.client.post(
            "/v1/leads", json={"displayName": "A"}, headers={**auth(), "Idempotency-Key": "k"}
        )
        assert r.status_code == 503 and r.json()["code"] == 14
        assert gw.leads.created == 0
        r = await gw.client.post("/v1/leads", json={"displayName": "A"}, headers=auth())
        assert r.status_code == 200 and gw.leads.created == 1


async def test_failed_logins_block_the_address_but_not_a_known_token(gateway_factory: GatewayFactory) -> None:
    """The client address is worked out only when needed (a refusal, or some address blocked):
    refusals still count against it, and a blocked address still meets 429 before any token
    check, except with a token this process verified before."""
    from dataclasses import replace

    from gateway.bounds import RequestBounds

    known = auth("rep-a1")
    async with gateway_factory(bounds=replace(RequestBounds(), address_limit=2)) as gw:
        assert (await gw.client.get("/v1/whoami", headers=known)).status_code == 200
        bad = {"Authorization": "Bearer not-a-token"}
        first, second = [await gw.client.get("/v1/whoami", headers=bad) for _ in range(2)]
        assert first.status_code == second.status_code == 401
        assert '"address";r=0;' in second.headers["ratelimit"]
        over = await gw.client.get("/v1/whoami", headers=bad)
        assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1
        # Blocked now: a token never verified here is turned away unread, a known one goes on.
        assert (await gw.client.get("/v1/whoami", headers=auth("rep-b2"))).status_code == 429
        assert (await gw.client.get("/v1/whoami", headers=known)).status_code == 200


async def test_a_redis_that_never_answers_holds_no_request(gateway_factory: GatewayFactory) -> None:
    """A Redis that takes connections and never answers (hung, a black-holed route): every request
    is answered once the gateway's Redis timeout passes, rate limits failing open, instead of
    waiting for ever (a refused token's 401 included: its address is counted in Redis)."""
    accepted: list[asyncio.StreamWriter] = []
    received = [0]  # bytes of commands sent to it

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # answer nothing, keep it open
        while chunk := await reader.read(65536):
            received[0] += len(chunk)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with gateway_factory(redis_url=f"redis://127.0.0.1:{port}/0", redis_timeout_seconds=0.5) as gw:
            bad = {"Authorization": "Bearer not-a-token"}
            refused, answered = await asyncio.wait_for(
                asyncio.gather(
                    gw.client.get("/v1/whoami", headers=bad), gw.client.get("/v1/whoami", headers=auth())
                ),
                timeout=8,
            )
            assert refused.status_code == 401, refused.text
            assert answered.status_code == 200 and "ratelimit" not in answered.headers, answered.text
            assert accepted and received[0]  # the gateway did ask it: the answers came from the timeout
            # For a while now the limits fail open at once, without asking the silent Redis again.
            asked = received[0]
            again = await asyncio.wait_for(gw.client.get("/v1/whoami", headers=auth()), timeout=8)
            assert again.status_code == 200 and received[0] == asked
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
