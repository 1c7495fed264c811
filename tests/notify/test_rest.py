"""The notify REST surface through the real gateway: send, inbox, mark read, SSE stream, preferences."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from deploy.local.infra import free_port
from gateway.app import create_app
from gateway.config import GatewaySettings
from kit.config import SERVICES
from tests.gateway.conftest import serve_app
from tests.notify.conftest import ADMIN, REP_A1, REP_A2, SERVICE, NotifyStack


def h(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


@pytest.fixture
async def rest(notify: NotifyStack, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    addresses = {name: f"127.0.0.1:{free_port()}" for name in SERVICES}
    addresses["notify"] = notify.server.address
    settings = replace(GatewaySettings(addresses=addresses, redis_url=redis_url))
    async with (
        serve_app(create_app(settings=settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        yield client


SEND = {
    "notification": {
        "category": "NOTIFICATION_CATEGORY_FROZEN_DEAL",
        "recipients": [{"userId": "rep-a1"}],
        "template": {"variables": {"deal_name": "Big deal"}},
        "dedupeKey": "frozen:D1",
    }
}


async def test_send_inbox_mark_read_over_rest(rest: httpx.AsyncClient) -> None:
    denied = await rest.post("/v1/notifications:send", json=SEND, headers=h(REP_A2))
    assert denied.status_code == 403
    sent = await rest.post("/v1/notifications:send", json=SEND, headers=h(SERVICE))
    assert sent.status_code == 200, sent.text
    again = await rest.post("/v1/notifications:send", json=SEND, headers=h(ADMIN))
    assert again.json()["deduplicated"] is True
    inbox = (await rest.get("/v1/inbox", headers=h(REP_A1), params={"pageSize": 10})).json()
    assert inbox["unreadCount"]["total"] == 1
    item_id = inbox["items"][0]["itemId"]
    assert inbox["items"][0]["title"] == "商机已冻结：Big deal"  # noqa: RUF001
    assert (await rest.get(f"/v1/inbox/{item_id}", headers=h(REP_A2))).status_code == 404
    read = await rest.post(f"/v1/inbox/{item_id}:markRead", json={}, headers=h(REP_A1))
    assert read.status_code == 200 and read.json()["item"]["read"] is True
    assert read.json()["unreadCount"].get("total", 0) == 0
    all_read = await rest.post("/v1/inbox:markAllRead", json={}, headers=h(REP_A1))
    assert all_read.status_code == 200
    bad = await rest.post(
        "/v1/notifications:send",
        json={"notification": {"category": "NOTIFICATION_CATEGORY_SYSTEM"}},
        headers=h(ADMIN),
    )
    assert bad.status_code == 400


async def test_inbox_stream_as_server_sent_events(rest: httpx.AsyncClient) -> None:
    received: list[dict[str, object]] = []
    got_item = asyncio.Event()

    async def listen() -> None:
        async with rest.stream("GET", "/v1/inbox:stream", headers=h(REP_A1)) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    received.append(json.loads(line[5:]))
                    if any("itemAdded" in e for e in received):
                        got_item.set()
                        return

    task = asyncio.create_task(listen())
    for _ in range(200):
        if received:
            break
        await asyncio.sleep(0.01)
    assert received and "unreadCount" in received[0]
    await rest.post("/v1/notifications:send", json=SEND, headers=h(SERVICE))
    await asyncio.wait_for(got_item.wait(), 2)
    await task
    assert received[-1]["itemAdded"]["category"] == "NOTIFICATION_CATEGORY_FROZEN_DEAL"  # type: ignore[index]


async def test_preferences_and_templates_over_rest(rest: httpx.AsyncClient) -> None:
    patched = await rest.patch(
        "/v1/users/me/notificationPreference",
        json={"locale": "en", "timeZone": "Europe/Berlin"},
        headers=h(REP_A1),
    )
    assert patched.status_code == 200, patched.text
    got = (await rest.get("/v1/users/me/notificationPreference", headers=h(REP_A1))).json()
    assert got["preference"]["locale"] == "en"
    bad = await rest.patch(
        "/v1/users/me/notificationPreference", json={"timeZone": "Mars/Base"}, headers=h(REP_A1)
    )
    assert bad.status_code == 400
    listed = (await rest.get("/v1/notificationTemplates", headers=h(ADMIN))).json()
    assert len([t for t in listed["templates"] if t.get("builtIn")]) == 26
