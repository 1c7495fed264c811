"""The console's files under /app/ and the embedded-only demo sign-in (gateway/webapp.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.webapp import WebApp
from kit.auth import AuthConfig, TokenVerifier

USERS = {
    "tenant": "demo",
    "users": [
        {"user_id": "rep-a1", "roles": ["rep"], "org": "east/team-a", "display_name": "Rep A1"},
        {"user_id": "admin", "roles": ["admin"], "org": "", "display_name": "Ops Admin"},
    ],
}


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>console</title>")
    (tmp_path / "assets" / "main-abc123.js").write_text("console.log(1)")
    (tmp_path / "sw.js").write_text("self")
    (tmp_path.parent / "secret.txt").write_text("outside the app")
    return tmp_path


def client(web: WebApp) -> httpx.AsyncClient:
    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if not web.handles(scope["path"]):  # the gateway's REST routes would answer it
            await Response("not the console's", 418)(scope, receive, send)
            return
        await (await web.handle(Request(scope, receive)))(scope, receive, send)

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://gw")


@pytest.fixture
def users_file(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "demo-users.json"
    path.write_text(json.dumps(USERS))
    yield str(path)


async def test_files_deep_links_and_cache_headers(dist: Path) -> None:
    async with client(WebApp(dist, demo_users_file="")) as c:
        index = await c.get("/app/")
        assert index.status_code == 200 and "console" in index.text
        assert index.headers["cache-control"] == "no-cache"
        assert "default-src 'self'" in index.headers["content-security-policy"]
        deep = await c.get("/app/leads/01HXYZ")  # a client-side route: the app answers
        assert deep.status_code == 200 and deep.text == index.text
        asset = await c.get("/app/assets/main-abc123.js")
        assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
        assert (await c.get("/app/sw.js")).headers["cache-control"] == "no-cache"
        missing = await c.get("/app/assets/gone-000.js")
        assert missing.status_code == 404 and missing.json()["code"] == 5
        assert (await c.get("/app")).status_code == 308


async def test_paths_never_leave_the_build(dist: Path) -> None:
    async with client(WebApp(dist, demo_users_file="")) as c:
        for path in ("/app/../secret.txt", "/app/%2e%2e/secret.txt", "/app/assets/../../secret.txt"):
            answer = await c.get(path)
            assert "outside the app" not in answer.text, path
        # Whatever reaches the handler unnormalised stays inside the build.
        raw = await web_handle(dist, "/app/../secret.txt")
        assert raw.status_code == 404


async def test_unbuilt_console_says_how_to_build(tmp_path: Path) -> None:
    async with client(WebApp(tmp_path / "nothing", demo_users_file="")) as c:
        answer = await c.get("/app/")
        assert answer.status_code == 503 and "make run" in answer.json()["message"]


async def test_demo_sign_in_mints_a_token_of_the_demo_user(dist: Path, users_file: str) -> None:
    web = WebApp(dist, demo_users_file=users_file)
    assert web.handles("/auth/demo-users") and web.handles("/auth/demo-sign-in")
    async with client(web) as c:
        listed = (await c.get("/auth/demo-users")).json()
        assert [u["userId"] for u in listed["users"]] == ["rep-a1", "admin"]
        answer = await c.post("/auth/demo-sign-in", json={"userId": "rep-a1"})
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
        principal = TokenVerifier(AuthConfig.from_env()).verify(answer.json()["token"])
        assert (principal.user_id, principal.tenant, principal.org) == ("rep-a1", "demo", "east/team-a")
        assert (await c.post("/auth/demo-sign-in", json={"userId": "root"})).status_code == 404
        assert (await c.post("/auth/demo-sign-in", content=b"{")).status_code == 400
        assert (await c.get("/auth/demo-sign-in")).status_code == 405


def test_no_demo_sign_in_in_production(dist: Path, users_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESOPS_ENV", "production")
    web = WebApp(dist, demo_users_file=users_file)
    assert not web.demo_sign_in
    assert not web.handles("/auth/demo-users") and not web.handles("/auth/demo-sign-in")
    assert web.handles("/app/")


async def web_handle(dist: Path, path: str) -> Response:
    """Call the handler with a raw (unnormalised) path, as a proxy in front might pass it."""
    scope: Scope = {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}
    return await WebApp(dist, demo_users_file="").handle(Request(scope))
