"""Loopback stand-ins for the third parties notify talks to: an HTTP provider and an SMTP server.

Both are real servers speaking the real protocol, record what they receive,
and can be told to fail (a number of times, or for requests matching a marker).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from deploy.local.infra import free_port


@dataclass
class Recorded:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeHttpProvider:
    """Answers like WeCom/DingTalk (errcode 0), an SMS gateway (Code OK) or a webhook receiver (200)."""

    requests: list[Recorded] = field(default_factory=list)
    fail_times: int = 0
    fail_status: int = 503
    poison_marker: str = ""  # requests whose body contains it get 400 forever
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(
            Recorded(request.url.path, dict(request.query_params), dict(request.headers), body)
        )
        if self.poison_marker and self.poison_marker.encode() in body:
            return JSONResponse({"errcode": 40001, "errmsg": "invalid payload"}, status_code=400)
        if self.fail_times > 0:
            self.fail_times -= 1
            return JSONResponse({"errmsg": "provider down"}, status_code=self.fail_status)
        return JSONResponse(
            {"errcode": 0, "errmsg": "ok", "Code": "OK", "BizId": f"biz-{len(self.requests)}"}
        )


@contextlib.asynccontextmanager
async def http_provider(**kwargs: Any) -> AsyncIterator[FakeHttpProvider]:
    fake = FakeHttpProvider(**kwargs)
    fake.port = free_port()
    app = Starlette(routes=[Route("/{path:path}", fake.handle, methods=["POST", "GET"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=fake.port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):  # uvicorn exposes `started` as a flag only
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield fake
    finally:
        server.should_exit = True
        await task


@dataclass
class FakeSmtp:
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    fail_times: int = 0
    fail_reply: str = "451 4.3.0 try again later"
    port: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.fail_times > 0:
            self.fail_times -= 1
            return self.fail_reply
        self.messages.append(
            (str(envelope.mail_from), list(envelope.rcpt_tos), bytes(envelope.content or b""))
        )
        return "250 OK"


@contextlib.asynccontextmanager
async def smtp_server(**kwargs: Any) -> AsyncIterator[FakeSmtp]:
    fake = FakeSmtp(**kwargs)
    fake.port = free_port()
    controller = Controller(fake, hostname="127.0.0.1", port=fake.port)
    controller.start()
    try:
        yield fake
    finally:
        controller.stop()
