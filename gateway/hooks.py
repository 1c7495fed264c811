"""The public receiver of inbound webhooks: POST /hooks/v1/{tenant}/{connector_id}.

External systems post their own payloads with their own signature headers and no
bearer token. This is the one gateway path that skips bearer authentication: it
authenticates nothing itself. It reads the raw body (capped at 1 MiB, the
gateway's slow-body timeout), and forwards the exact bytes, the headers (minus
Authorization and Cookie), the query and the tenant named in the URL to
integration's IngestWebhook, a public method (no bearer token: the sender's
signature is the credential); integration alone holds the signing secrets and
decides (401 for a bad or stale signature, 404 for an unknown tenant or
connector, which look the same, 503 for a disabled one). The gateway mints
nothing, so it needs no JWT signing key (verifying keys only, for its other routes).

Limits: every request counts against the tenant and a per-connector key of the
gateway's rate limiter; every refusal (401 / 404) counts against the client
address like a failed login, and an address over that limit is blocked.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.requests import Request
from starlette.responses import Response

from gateway import errors as gw_errors
from gateway.metrics import ROUTE_KEY
from gateway.outcomes import BodyRefused, Outcome, respond, throttled
from gateway.proxy import Gateway
from gateway.ratelimit import Decision
from gateway.routes import Route
from kit.grpc.errors import status_from_error

log = logging.getLogger("salesops.gateway.hooks")

PREFIX = "/hooks/v1/"
TEMPLATE = "/hooks/v1/{tenant}/{connector_id}"
INGEST = "/salesops.integration.v1.IntegrationService/IngestWebhook"
MAX_BODY = 1 << 20
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DROPPED = frozenset({"authorization", "cookie", "proxy-authorization"})


def is_hook(path: str) -> bool:
    return path.startswith(PREFIX)


async def read_capped(request: Request, limit: int, timeout: float) -> bytes:
    """The raw body, refused past `limit` bytes (413) or when it arrives too slowly (408)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyRefused(413, "request body too large")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout if timeout > 0 else None):  # a slow body holds a task
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyRefused(413, "request body too large")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyRefused(408, f"request body not received within {timeout:g} s") from None
    return b"".join(chunks)


class HookReceiver:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._route: Route | None = next((r for r in gateway.router.routes if r.grpc_path == INGEST), None)

    async def handle(self, request: Request) -> Response:
        request.scope[ROUTE_KEY] = TEMPLATE
        parts = request.scope["path"][len(PREFIX) :].split("/")
        if len(parts) != 2 or not all(_SEGMENT.match(p) for p in parts):
            status, data = gw_errors.simple(grpc.StatusCode.NOT_FOUND, "no such webhook receiver")
            return Response(data, status, media_type="application/json")
        if request.method != "POST":
            _, data = gw_errors.simple(grpc.StatusCode.UNIMPLEMENTED, f"{request.method} is not allowed here")
            return Response(data, 405, {"Allow": "POST"}, media_type="application/json")
        tenant, connector_id = parts
        gw = self.gateway
        address = gw.client_address(request)
        if gw.limiter is not None:
            wait = gw.blocked.retry_after(address)
            if wait:
                return respond(throttled(Decision(False, {"Retry-After": str(wait)}, wait, "address")))
            decision = await gw.limiter.check(tenant, f"hooks:{connector_id}")
            if not decision.allowed:
                return respond(throttled(decision))
        try:
            body = await read_capped(request, min(gw.max_body, MAX_BODY), gw.bounds.body_timeout_seconds)
        except BodyRefused as refused:
            return respond(refused.outcome({}))
        outcome = await self._forward(request, tenant, connector_id, body, address)
        if outcome.status in (401, 404) and gw.limiter is not None:
            decision = await gw.limiter.check_address(address)  # probing for secrets or connectors
            if not decision.allowed:
                gw.blocked.add(address, decision.retry_after_seconds)
        return respond(outcome)

    async def _forward(
        self, request: Request, tenant: str, connector_id: str, body: bytes, address: str
    ) -> Outcome:
        if self._route is None:
            _, data = gw_errors.simple(grpc.StatusCode.UNAVAILABLE, "webhook receiver not available")
            return Outcome(503, data)
        received = Timestamp()
        received.GetCurrentTime()
        make: Any = self._route.request_cls
        message = make(
            tenant=tenant,
            connector_id=connector_id,
            body=body,
            content_type=request.headers.get("content-type", "")[:128],
            headers={k: v for k, v in request.headers.items() if k not in _DROPPED},
            query=dict(request.query_params),
            receive_time=received,
            remote_address=address[:64],
        )
        md = [("x-request-id", request.state.request_id)]  # no token: IngestWebhook is public
        try:
            reply = await self.gateway.backends.unary(self._route, message, md, self.gateway.timeout)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            http, _ = gw_errors.simple(code, "")
            # The sender learns the class of refusal, never which check failed (details stay in the logs).
            text = (
                "webhook refused"
                if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.NOT_FOUND)
                else (status_from_error(exc).message)
            )
            _, data = gw_errors.simple(code, text)
            return Outcome(http, data)
        except LookupError:  # no address configured for the integration backend
            _, data = gw_errors.simple(grpc.StatusCode.UNAVAILABLE, "webhook receiver not available")
            return Outcome(503, data)
        if reply.response_body:
            return Outcome(200, reply.response_body, content_type=reply.response_content_type or "text/plain")
        return Outcome(200, b"", content_type="text/plain")
