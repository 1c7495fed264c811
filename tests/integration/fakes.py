"""Loopback stand-ins for the external systems integration talks to.

`FakeSystem` is a real HTTP server answering like a finance / ERP API (a health
route behind a bearer API key) and like WeCom / DingTalk token endpoints
(errcode 0 for the right credentials, 40001 otherwise). It records requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from deploy.local.infra import free_port


@dataclass
class FakeSystem:
    api_key: str = "the-api-key"
    app_key: str = "ding-app"
    app_secret: str = "ding-secret"
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def health(self, request: Request) -> Response:
        self.seen.append((request.url.path, dict(request.headers)))
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"error": "bad key"}, status_code=401)
        return JSONResponse({"ok": True})

    async def gettoken(self, request: Request) -> Response:
        self.seen.append((request.url.path, dict(request.query_params)))
        q = request.query_params
        good = q.get("appkey") == self.app_key and q.get("appsecret") == self.app_secret
        return JSONResponse(
            {"errcode": 0, "access_token": "t"} if good else {"errcode": 40001, "errmsg": "bad"}
        )

    async def redirect(self, request: Request) -> Response:
        return Response(status_code=302, headers={"location": "http://169.254.169.254/latest/meta-data"})


@contextlib.asynccontextmanager
async def fake_system() -> AsyncIterator[FakeSystem]:
    system = FakeSystem(port=free_port())
    app = Starlette(
        routes=[
            Route("/health", system.health),
            Route("/gettoken", system.gettoken),
            Route("/moved", system.redirect),
        ]
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=system.port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(400):
        if server.started:
            break
        await asyncio.sleep(0.025)
    try:
        yield system
    finally:
        server.should_exit = True
        await task
