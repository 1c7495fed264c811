"""A loopback group bot that behaves like WeCom's and DingTalk's webhook robots.

WeCom: POST /cgi-bin/webhook/send?key=K. DingTalk: POST /robot/send?access_token=T
and, with signature security, &timestamp=<ms>&sign=<base64 HMAC-SHA256(secret,
"<timestamp>\\n<secret>")> (checked here with its own code; a timestamp over an hour
off, or a wrong sign, is errcode 310000). Both answer HTTP 200 with {"errcode": 0}
and enforce 20 messages a minute per bot: beyond it, errcode 45009 (WeCom) or
130101 (DingTalk). The minute is measured on `clock` (the test's time, e.g. the
time-skipping Temporal server's). Accepted posts are recorded with that time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from deploy.local.infra import free_port

CAP = 20


async def _real_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Post:
    bot: str
    at: datetime
    body: dict[str, Any]

    @property
    def text(self) -> str:
        md = self.body.get("markdown", {})
        return str(md.get("content") or md.get("text") or self.body.get("text", {}).get("content", ""))


@dataclass
class FakeBot:
    secrets: dict[str, str] = field(default_factory=dict)  # DingTalk access token -> signing secret
    clock: Callable[[], Awaitable[datetime]] = _real_now
    limited_times: int = 0  # answer "too many messages" this many times whatever the count
    posts: list[Post] = field(default_factory=list)
    refused: list[tuple[str, int]] = field(default_factory=list)  # (bot, errcode)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _over_cap(self, bot: str, now: datetime) -> bool:
        recent = [p for p in self.posts if p.bot == bot and now - p.at < timedelta(minutes=1)]
        return len(recent) >= CAP

    async def _answer(self, bot: str, body: bytes, limited_code: int) -> Response:
        now = await self.clock()
        if self.limited_times > 0 or self._over_cap(bot, now):
            self.limited_times = max(0, self.limited_times - 1)
            self.refused.append((bot, limited_code))
            return JSONResponse(
                {"errcode": limited_code, "errmsg": "send too fast, exceed 20 times per minute"}
            )
        self.posts.append(Post(bot, now, json.loads(body)))
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def wecom(self, request: Request) -> Response:
        key = request.query_params.get("key", "")
        if not key:
            return JSONResponse({"errcode": 93000, "errmsg": "invalid webhook url"})
        return await self._answer(f"wecom:{key}", await request.body(), 45009)

    async def dingtalk(self, request: Request) -> Response:
        q = request.query_params
        token = q.get("access_token", "")
        if token not in self.secrets:
            return JSONResponse({"errcode": 300001, "errmsg": "token is not exist"})
        secret = self.secrets[token]
        if secret:
            stamp = q.get("timestamp", "")
            if not stamp.isdigit() or abs(int(stamp) - time.time() * 1000) > 3_600_000:
                return JSONResponse({"errcode": 310000, "errmsg": "timestamp expired"})
            mac = hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(base64.b64encode(mac).decode(), q.get("sign", "")):
                return JSONResponse({"errcode": 310000, "errmsg": "sign not match"})
        return await self._answer(f"dingtalk:{token}", await request.body(), 130101)


@contextlib.asynccontextmanager
async def fake_bot(**kwargs: Any) -> AsyncIterator[FakeBot]:
    bot = FakeBot(**kwargs)
    bot.port = free_port()
    app = Starlette(
        routes=[
            Route("/cgi-bin/webhook/send", bot.wecom, methods=["POST"]),
            Route("/robot/send", bot.dingtalk, methods=["POST"]),
        ]
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=bot.port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):  # uvicorn exposes `started` as a flag only
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield bot
    finally:
        server.should_exit = True
        await task
