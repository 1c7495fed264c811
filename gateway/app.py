"""The gateway's ASGI app: REST routes from the protos, OpenAPI, offline batch, health."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount
from starlette.routing import Route as StarletteRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import access_log as access
from gateway import errors as gw_errors
from gateway.backends import Backends
from gateway.batch import BATCH_PATH, handle_batch
from gateway.bounds import BoundsMiddleware
from gateway.comments import load_comments
from gateway.config import GatewaySettings
from gateway.docs_page import DOCS_HTML, docs_static_dir
from gateway.health import BackendHealth
from gateway.hooks import HookReceiver, is_hook
from gateway.idempotency import IdempotencyStore
from gateway.metrics import GatewayMetrics
from gateway.openapi import build_openapi
from gateway.outcomes import internal_error
from gateway.proto_json import MEMO
from gateway.proxy import Gateway
from gateway.ratelimit import RateLimiter
from gateway.routes import Router, load_routes
from gateway.supervision import status_path, supervised_children
from gateway.webapp import WebApp
from kit import redis_client
from kit.auth import AuthConfig, TokenVerifier
from kit.metrics.endpoint import serve_metrics

access_log = access.access_log
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")
ALL_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]
# A ULID (48-bit milliseconds, 80 random bits) in Crockford base32, 10 bits per table look-up:
# python-ulid's `str(ULID())` (its generator, an os.urandom syscall, a char-by-char encoder) cost
# ~3x as much per request. A request id names a request in logs; it is no secret.
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_SHIFTS = tuple(range(120, -1, -10))
_rng = random.Random()
os.register_at_fork(after_in_child=_rng.seed)  # a forked worker must not repeat its parent's ids
_random_bits = _rng.getrandbits


def new_request_id() -> str:
    value = (time.time_ns() // 1_000_000) << 80 | _random_bits(80)
    return "".join([_PAIRS[(value >> s) & 1023] for s in _SHIFTS])


class RequestIdMiddleware:
    """Echo (or make) X-Request-ID, expose it to handlers, log one line and record the metrics
    (gateway.metrics) of each request: one layer, so an answer passes one `send` wrapper."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        metrics = self.metrics
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode("latin-1")
        rid = given if _REQUEST_ID.match(given) else new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        status = 0  # none sent: the log says 0, the metrics 500 (an exception: the server's fault)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                metrics.answered(scope, started)
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        metrics.begin()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if not status:
                metrics.answered(scope, started)
            metrics.end(scope, int(status) or 500)
            extra: dict[str, Any] = {
                "request_id": rid,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            }
            trace_id = scope["state"].get("trace_id")
            if trace_id:
                extra["trace_id"] = trace_id
            access.write(scope["method"], scope["path"], status, extra)


def create_app(
    backends: BackendHealth | None = None,
    settings: GatewaySettings | None = None,
    verifier: TokenVerifier | None = None,
    webapp: WebApp | None = None,
) -> ASGIApp:
    cfg = settings or GatewaySettings.from_env()
    health = backends or BackendHealth(cfg.addresses)
    router = Router(load_routes())
    MEMO.resize(cfg.json_memo_bytes)
    gateway = Gateway(
        router,
        verifier or TokenVerifier(AuthConfig.from_env()),
        Backends(cfg.addresses, cfg.channels_per_backend),
        None,
        None,
        cfg.timeout_seconds,
        cfg.max_body_bytes,
        cfg.gzip_min_bytes,
        cfg.bounds,
    )
    openapi_cache: list[bytes] = []

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    supervisor_file = status_path()  # set by the embedded launcher only

    async def readyz(_request: Request) -> JSONResponse:
        statuses = await health.statuses()
        ready = all(s == "SERVING" for s in statuses.values())
        body: dict[str, Any] = {"ready": ready, "services": statuses}
        children = supervised_children(supervisor_file)
        if children is not None:  # under `make run`: each child's restarts and last exit
            ready = ready and all(c.get("state") == "up" for c in children.values())
            body.update(ready=ready, supervised=children)
        return JSONResponse(body, status_code=200 if ready else 503)

    async def openapi(_request: Request) -> Response:
        if not openapi_cache:
            comments = await asyncio.to_thread(load_comments)
            doc: dict[str, Any] = build_openapi(router.routes, comments, BATCH_PATH)
            openapi_cache.append(json.dumps(doc).encode())
        return Response(openapi_cache[0], media_type="application/json")

    async def docs(_request: Request) -> HTMLResponse:
        return HTMLResponse(DOCS_HTML)

    async def batch(request: Request) -> Response:
        return await handle_batch(gateway, request, cfg.batch_max_items)

    async def unrouted(request: Request, exc: Exception) -> Response:
        # Starlette's own 404/405 (docs files, health, batch) answer as the REST routes do: a JSON
        # Status, not a plain-text page naming the framework.
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        code = grpc.StatusCode.UNIMPLEMENTED if status == 405 else grpc.StatusCode.NOT_FOUND
        _, data = gw_errors.simple(code, f"no route for {request.method} {request.url.path}")
        headers = exc.headers if isinstance(exc, HTTPException) else None
        return Response(data, status, headers=headers, media_type="application/json")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        metrics = serve_metrics()  # SALESOPS_METRICS_PORT; one per process (run one worker per pod)
        health.open()
        gateway.backends.open()
        wait = cfg.redis_timeout_seconds if cfg.redis_timeout_seconds > 0 else None
        redis = redis_client.connect(cfg.redis_url, socket_timeout=wait, socket_connect_timeout=wait)
        gateway.limiter = RateLimiter(
            redis, cfg.tenant_limit, cfg.user_limit, cfg.window_seconds, cfg.bounds.address_limit
        )
        gateway.idempotency = IdempotencyStore(redis, cfg.idempotency_ttl_seconds, cfg.timeout_seconds + 30)
        try:
            yield
        finally:
            await health.close()
            await gateway.backends.close()
            await redis.aclose()
            if metrics is not None:
                await asyncio.to_thread(metrics.close)

    app = Starlette(
        routes=[
            StarletteRoute("/healthz", healthz),
            StarletteRoute("/readyz", readyz),
            StarletteRoute("/openapi.json", openapi),
            StarletteRoute("/docs", docs),
            Mount("/docs/static", StaticFiles(directory=docs_static_dir()), name="docs-static"),
            StarletteRoute(BATCH_PATH, batch, methods=["POST"]),
        ],
        middleware=[Middleware(GZipMiddleware, minimum_size=cfg.gzip_min_bytes)],
        exception_handlers={404: unrouted, 405: unrouted},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # `/docs/` is not `/docs`: no redirect that guesses a route
    fixed = {"/healthz", "/readyz", "/openapi.json", "/docs", BATCH_PATH}
    hooks = HookReceiver(gateway)
    web = webapp or WebApp()

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        # REST calls skip Starlette's routing and middleware layers: they are the hot path.
        if scope["type"] == "http" and scope["path"] not in fixed and not scope["path"].startswith("/docs/"):
            request = Request(scope, receive)
            try:
                # The webhook receiver is the one path without bearer auth (gateway/hooks.py).
                if is_hook(scope["path"]):
                    response = await hooks.handle(request)
                elif web.handles(scope["path"]):  # the console's files (and embedded demo sign-in)
                    response = await web.handle(request)
                else:
                    response = await gateway.handle(request)
            except Exception:
                access_log.exception("unhandled error", extra={"request_id": request.state.request_id})
                response = internal_error(request.state.request_id)
            await response(scope, receive, send)
        else:
            await app(scope, receive, send)

    outer: ASGIApp = BoundsMiddleware(dispatch, cfg.bounds)
    if cfg.cors_origins:
        outer = CORSMiddleware(
            outer,
            allow_origins=list(cfg.cors_origins),
            allow_methods=ALL_METHODS,
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "X-Request-ID",
                "Last-Event-ID",
            ],
            expose_headers=[
                "RateLimit",
                "RateLimit-Policy",
                "Retry-After",
                "X-Request-ID",
                "Idempotent-Replayed",
            ],
            max_age=600,
        )
    return RequestIdMiddleware(outer, GatewayMetrics(frozenset(fixed)))
