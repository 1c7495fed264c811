"""The REST -> gRPC pipeline: route, authenticate, rate-limit, idempotency, transcode, call.

`dispatch` is the core shared by plain requests and the offline batch; `handle`
wraps it for Starlette and serves server-streaming RPCs as Server-Sent Events.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from opentelemetry import propagate, trace
from opentelemetry.context import Context, get_current
from opentelemetry.trace import SpanKind, Status, StatusCode
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from gateway import errors as gw_errors
from gateway.backends import Backends
from gateway.bounds import RequestBounds, address_bucket, client_address
from gateway.idempotency import IdempotencyStore, KeyReused, Stored, fingerprint
from gateway.metrics import ROUTE_KEY
from gateway.outcomes import BodyRefused, Outcome, respond, throttled, unauthorized
from gateway.ratelimit import Blocked, Decision, RateLimiter
from gateway.routes import Route, Router
from gateway.sse import SSEResponse, sse_event
from gateway.transcode import answer_json, build_request
from kit import errors
from kit.auth import AuthError, Principal, TokenVerifier
from kit.grpc.errors import status_from_error
from kit.grpc.interceptors import PrincipalCache
from kit.telemetry import SpanStarter

log = logging.getLogger("salesops.gateway")
# With no exporter (the default) a span is made as its context only (ids, flags): a recorded
# span nobody receives was the largest single share of the gateway's own CPU per call.
spans = SpanStarter("salesops.gateway")

IDEMPOTENT_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
STREAM_RETRY_SECONDS = 5
# Streaming requests with this field resume from the SSE Last-Event-ID; events carry `cursor` as id.
RESUME_FIELD = "resume_cursor"


def _too_large() -> BodyRefused:
    return BodyRefused(413, "request body too large")


@dataclass
class Caller:
    principal: Principal
    authorization: str
    trace: Context | None = None  # the gateway span's context, propagated to the services


class _Tokens(PrincipalCache):
    def known(self, header: str | None) -> bool:
        """Verified by this process before (it may have expired since: verification still runs)."""
        return header is not None and header in self._cache


def _error(err: errors.SalesopsError) -> Outcome:
    status, body = gw_errors.from_error(err)
    return Outcome(422 if isinstance(err, KeyReused) else status, body)


class Gateway:
    def __init__(
        self,
        router: Router,
        verifier: TokenVerifier,
        backends: Backends,
        limiter: RateLimiter | None,
        idempotency: IdempotencyStore | None,
        timeout_seconds: float,
        max_body_bytes: int,
        gzip_min_bytes: int = 1024,
        bounds: RequestBounds | None = None,
    ) -> None:
        self.bounds = bounds or RequestBounds()
        self.blocked = Blocked()
        self.open_streams: Counter[tuple[str, str]] = Counter()
        self.gzip_min = gzip_min_bytes
        self.router = router
        self.verifier = verifier
        self.backends = backends
        self.limiter = limiter
        self.idempotency = idempotency
        self.timeout = timeout_seconds
        self.max_body = max_body_bytes
        self._tokens = _Tokens(verifier)

    # ------------------------------------------------------------------ pieces

    def authenticate(self, header: str | None) -> Caller:
        """The verified caller; raises AuthError. Verified tokens are cached until they expire."""
        if not header:
            raise AuthError("missing")
        return Caller(self._tokens.verify_bearer(header), header)

    async def read_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared in (None, "0") and "transfer-encoding" not in request.headers:
            return b""  # no body on the wire (most GETs): skip the receive round
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise _too_large()
        chunks: list[bytes] = []
        size = 0
        limit = self.bounds.body_timeout_seconds
        try:
            async with asyncio.timeout(limit if limit > 0 else None):  # a slow body holds a task
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > self.max_body:
                        raise _too_large()
                    chunks.append(chunk)
        except TimeoutError:
            raise BodyRefused(408, f"request body not received within {limit:g} s") from None
        return b"".join(chunks)

    def metadata(self, caller: Caller, request_id: str) -> list[tuple[str, str]]:
        md = [("authorization", caller.authorization), ("x-request-id", request_id)]
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=caller.trace)
        md.extend(carrier.items())
        return md

    # ------------------------------------------------------------------ core

    async def call(
        self,
        route: Route,
        path_vars: dict[str, str],
        query: list[tuple[str, str]],
        body: bytes,
        caller: Caller,
        request_id: str,
    ) -> Outcome:
        return await self._forward(route, path_vars, query, body, self.metadata(caller, request_id))

    async def _forward(
        self,
        route: Route,
        path_vars: dict[str, str],
        query: list[tuple[str, str]],
        body: bytes,
        md: list[tuple[str, str]],
    ) -> Outcome:
        try:
            message = build_request(route, path_vars, query, body, self.bounds.max_json_depth)
        except errors.SalesopsError as err:
            return _error(err)
        try:
            reply = await self.backends.unary(route, message, md, self.timeout, wire=True)
        except grpc.aio.AioRpcError as exc:
            status = status_from_error(exc)
            outcome = Outcome(gw_errors.http_status(status.code), gw_errors.status_json(status))
            wait = gw_errors.retry_after(status)
            if wait is not None:  # a service cap that says when to come back
                outcome.headers["Retry-After"] = wait
            return outcome
        return Outcome(200, answer_json(route, reply))

    async def dispatch(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        raw_query: str,
        body: bytes,
        caller: Caller,
        request_id: str,
        idempotency_key: str | None,
        found: tuple[Route, dict[str, str]] | None = None,
    ) -> Outcome:
        """One REST call after authentication: used by plain requests and by the offline batch.
        `found`: the route and path variables when the caller matched `path` already."""
        if found is None:
            found = self.router.match(method, path)
        if found is None:
            return self.not_routed(method, path)
        route, path_vars = found
        if route.server_streaming:
            status, data = gw_errors.simple(grpc.StatusCode.INVALID_ARGUMENT, "streams are not served here")
            return Outcome(status, data)
        if idempotency_key is None or method not in IDEMPOTENT_METHODS or self.idempotency is None:
            return await self.call(route, path_vars, query, body, caller, request_id)
        who = caller.principal
        fp = fingerprint(method, path, raw_query, body)
        try:
            stored = await self.idempotency.begin(who.tenant, who.user_id, idempotency_key, fp)
        except errors.SalesopsError as err:
            return _error(err)
        except (RedisError, OSError) as exc:
            # Without the store a retry could apply twice: refuse rather than guess.
            log.warning("idempotency store unavailable: %s", exc)
            return _error(errors.Unavailable("idempotency store unavailable, retry later"))
        if stored is not None:
            return Outcome(
                stored.status, stored.body, {"Idempotent-Replayed": "true"}, stored.content_type, True
            )
        try:
            outcome = await self.call(route, path_vars, query, body, caller, request_id)
        except BaseException:
            await self.idempotency.release(who.tenant, who.user_id, idempotency_key)
            raise
        try:
            await self.idempotency.finish(
                who.tenant,
                who.user_id,
                idempotency_key,
                fp,
                Stored(outcome.status, outcome.body, outcome.content_type),
            )
        except (RedisError, OSError) as exc:  # applied already: answer, the key expires
            log.warning("idempotency result not stored: %s", exc)
        return outcome

    def not_routed(self, method: str, path: str) -> Outcome:
        allowed = self.router.allowed(path)
        if allowed:
            _, data = gw_errors.simple(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not allowed on {path}")
            return Outcome(405, data, {"Allow": ", ".join(allowed)})
        status, data = gw_errors.simple(grpc.StatusCode.NOT_FOUND, f"no route for {method} {path}")
        return Outcome(status, data)

    # ------------------------------------------------------------------ HTTP

    async def guard(self, request: Request) -> tuple[Caller, dict[str, str]] | Outcome:
        """Authentication and rate limits shared by every authenticated endpoint.

        A request failing authentication counts against its client address; an address over
        that limit is refused before its token is verified, unless this process verified
        the same token before (a colleague's session behind the same NAT goes on).
        """
        header = request.headers.get("authorization")
        address = None  # worked out only when needed: no address blocked, and no refusal to count
        if self.limiter is not None and self.blocked:
            address = self.client_address(request)
            wait = self.blocked.retry_after(address)
            if wait and not self._tokens.known(header):
                return throttled(Decision(False, {"Retry-After": str(wait)}, wait, "address"))
        try:
            caller = self.authenticate(header)
        except AuthError as exc:
            refused = unauthorized(exc)
            if self.limiter is not None:
                if address is None:
                    address = self.client_address(request)
                decision = await self.limiter.check_address(address)
                if not decision.allowed:
                    self.blocked.add(address, decision.retry_after_seconds)
                    return throttled(decision)
                refused.headers.update(decision.headers)
            return refused
        headers: dict[str, str] = {}
        if self.limiter is not None:
            decision = await self.limiter.check(caller.principal.tenant, caller.principal.user_id)
            headers = decision.headers
            if not decision.allowed:
                return throttled(decision)
        return caller, headers

    def client_address(self, request: Request) -> str:
        peer = request.scope.get("client")
        return address_bucket(
            client_address(
                peer[0] if peer else None,
                request.headers.getlist("x-forwarded-for"),
                self.bounds.networks(),
            )
        )

    async def handle(self, request: Request) -> Response:
        request_id = request.state.request_id
        method, path = request.method, request.scope["path"]
        found = self.router.match(method, path)
        if found is None:
            return respond(self.not_routed(method, path))
        route = found[0]
        request.scope[ROUTE_KEY] = route.path.template  # the metrics' label (gateway.metrics)
        # A span per call whose context travels in the metadata; not made current, which
        # saves a context attach/detach on the hot path (the access log runs outside it anyway).
        span = spans.start(route.span_name, get_current(), SpanKind.SERVER, {})
        span_context = span.get_span_context()
        if span_context.is_valid:  # for the access log line, written outside the span
            request.state.trace_id = format(span_context.trace_id, "032x")
        try:
            response = await self._handle(
                request, route, found[1], request_id, trace.set_span_in_context(span)
            )
            if response.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR, str(response.status_code)))
            return response
        finally:
            span.end()

    async def _handle(
        self, request: Request, route: Route, path_vars: dict[str, str], request_id: str, ctx: Context
    ) -> Response:
        if route.public:
            return respond(await self.public(request, route, path_vars, request_id, ctx))
        guarded = await self.guard(request)
        if isinstance(guarded, Outcome):
            return respond(guarded)
        caller, headers = guarded
        caller.trace = ctx
        try:
            body = await self.read_body(request)
        except BodyRefused as refused:
            return respond(refused.outcome(headers))
        query = query_items(request)
        if route.server_streaming:
            return await self.stream(route, path_vars, query, request, caller, request_id, headers)
        outcome = await self.dispatch(
            request.method,
            request.scope["path"],
            query,
            request.scope["query_string"].decode("latin-1"),
            body,
            caller,
            request_id,
            request.headers.get("idempotency-key"),
            (route, path_vars),
        )
        outcome.headers.update(headers)
        if len(outcome.body) >= self.gzip_min and "gzip" in request.headers.get("accept-encoding", ""):
            outcome.body = gzip.compress(outcome.body, 5)
            outcome.headers.update({"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
        return respond(outcome)

    async def public(
        self, request: Request, route: Route, path_vars: dict[str, str], request_id: str, ctx: Context
    ) -> Outcome:
        """A public method (kit.grpc.public): forwarded with no token, any Authorization unread.

        The request is its own credential, so refusals (401 / 403 / 404) count against the
        client address like failed logins, and an address over that limit is turned away here.
        """
        address = self.client_address(request) if self.limiter is not None else ""
        if self.limiter is not None:
            wait = self.blocked.retry_after(address)
            if wait:
                return throttled(Decision(False, {"Retry-After": str(wait)}, wait, "address"))
        try:
            body = await self.read_body(request)
        except BodyRefused as refused:
            return refused.outcome({})
        md = [("x-request-id", request_id)]
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=ctx)
        md.extend(carrier.items())
        outcome = await self._forward(route, path_vars, query_items(request), body, md)
        if outcome.status in (401, 403, 404) and self.limiter is not None:
            decision = await self.limiter.check_address(address)
            if not decision.allowed:
                self.blocked.add(address, decision.retry_after_seconds)
        return outcome

    async def stream(
        self,
        route: Route,
        path_vars: dict[str, str],
        query: list[tuple[str, str]],
        request: Request,
        caller: Caller,
        request_id: str,
        headers: dict[str, str],
    ) -> Response:
        """A server-streaming RPC as Server-Sent Events; the event id is the message's `cursor`.

        Streams never end by themselves, so each user may hold only a few open at once (per
        gateway process): one more is a 429 until one of them closes.
        """
        who = (caller.principal.tenant, caller.principal.user_id)
        if self.open_streams[who] >= self.bounds.max_streams_per_user:
            err = errors.ResourceExhausted(
                f"at most {self.bounds.max_streams_per_user} open streams per user",
                subject="streams",
                retry_after_seconds=STREAM_RETRY_SECONDS,
                reason="TOO_MANY_STREAMS",
            )
            refused = _error(err)
            refused.headers.update({**headers, "Retry-After": str(STREAM_RETRY_SECONDS)})
            return respond(refused)
        self.open_streams[who] += 1
        try:
            response = await self._open_stream(route, path_vars, query, request, caller, request_id, headers)
        except BaseException:
            self._stream_closed(who)
            raise
        if not isinstance(response, SSEResponse):
            self._stream_closed(who)
        else:
            response.on_close = lambda: self._stream_closed(who)
        return response

    def _stream_closed(self, who: tuple[str, str]) -> None:
        self.open_streams[who] -= 1
        if self.open_streams[who] <= 0:
            del self.open_streams[who]

    async def _open_stream(
        self,
        route: Route,
        path_vars: dict[str, str],
        query: list[tuple[str, str]],
        request: Request,
        caller: Caller,
        request_id: str,
        headers: dict[str, str],
    ) -> Response:
        try:
            message = build_request(route, path_vars, query, b"", self.bounds.max_json_depth)
        except errors.SalesopsError as err:
            return respond(_error(err))
        resume = request.headers.get("last-event-id")
        if (
            resume
            and RESUME_FIELD in message.DESCRIPTOR.fields_by_name
            and not getattr(message, RESUME_FIELD)
        ):
            setattr(message, RESUME_FIELD, resume)
        call = self.backends.stream(route, message, self.metadata(caller, request_id))
        try:
            first = await call.read()
        except grpc.aio.AioRpcError as exc:
            status = status_from_error(exc)
            return respond(
                Outcome(gw_errors.http_status(status.code), gw_errors.status_json(status), headers)
            )

        async def events() -> AsyncIterator[bytes]:
            item = first
            try:
                while item is not grpc.aio.EOF:  # type: ignore[attr-defined]
                    yield sse_event(route, item)
                    item = await call.read()
            except grpc.aio.AioRpcError as exc:
                yield b"event: error\ndata: " + gw_errors.status_json(status_from_error(exc)) + b"\n\n"
            finally:
                call.cancel()

        sse_headers = {**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return SSEResponse(events(), call.cancel, media_type="text/event-stream", headers=sse_headers)


def query_items(request: Request) -> list[tuple[str, str]]:
    """The query's (name, value) pairs; most calls have none, and then no parser is built."""
    return request.query_params.multi_items() if request.scope["query_string"] else []
