"""The gateway's ASGI app. For now: liveness and readiness; REST routes come from the protos."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.health import BackendHealth


def create_app(backends: BackendHealth | None = None) -> Starlette:
    health = backends or BackendHealth()

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> JSONResponse:
        statuses = await health.statuses()
        ready = all(s == "SERVING" for s in statuses.values())
        return JSONResponse({"ready": ready, "services": statuses}, status_code=200 if ready else 503)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        health.open()
        yield
        await health.close()

    return Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz)], lifespan=lifespan)
