"""The server pipeline every RPC goes through: trace -> authenticate -> deadline -> map errors.

One wrapper doing the four steps in order, put around each method's handler once when the
servicer is registered (`MethodTable`), not a grpc.aio interceptor: an interceptor costs a
coroutine chain per call to find the handler, and grpc.aio's "registered methods" keep one
pending request per method that its accept loop `asyncio.wait`s over on every call (O(methods)
per call: ~45 futures in an API process). Measured in `make bench` (grpc_overhead).

Authentication has two narrow exceptions and one addition:
- methods a `Registration` names public (`public_methods`, full names, exact match) run
  without a caller (`call.maybe_principal()` is None): their request carries its own
  credential (a webhook's signature, a partner secret), and any bearer sent is ignored;
- the infrastructure services in `PUBLIC_PREFIXES` (health, reflection) are not wrapped;
- partner tokens are refused a method outside their scopes (`kit.grpc.scopes`) and pass
  the Redis checks of `kit.grpc.partners` (revoked key, per-key rate) on every call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from ulid import ULID

from kit import errors
from kit.auth import AuthError, Principal, TokenVerifier
from kit.grpc import context as call
from kit.grpc.errors import internal_status, to_grpc_status
from kit.grpc.metrics import MethodMetrics
from kit.grpc.partners import PartnerGuard
from kit.grpc.scopes import MethodScopes
from kit.telemetry import SpanStarter

log = logging.getLogger("salesops.grpc")
spans = SpanStarter("salesops.kit.grpc")

# Infrastructure services answer without a token (probes, grpcurl discovery).
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class _MetadataGetter:
    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if value is not None else None

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


_GETTER = _MetadataGetter()

if TYPE_CHECKING:  # the stubs' generics do not exist at run time
    Ctx = grpc.aio.ServicerContext[Any, Any]
    Handler = grpc.RpcMethodHandler[Any, Any]
else:
    Ctx = Handler = Any


class ServerPipeline:
    def __init__(
        self,
        service: str,
        verifier: TokenVerifier,
        default_deadline: float,
        *,
        public: frozenset[str] = frozenset(),
        scopes: MethodScopes | None = None,
        partners: PartnerGuard | None = None,
    ) -> None:
        self.service = service
        self.verifier = verifier
        self.default_deadline = default_deadline
        self.public = public  # full method names, matched exactly
        self.scopes = scopes or MethodScopes()
        self.partners = partners  # None: partner tokens are refused (nothing could check them)
        self._principals = PrincipalCache(verifier)

    def wrap(self, method: str, handler: Handler) -> Handler:
        """`handler` of the full method name with the pipeline around it (once per method)."""
        if method.startswith(PUBLIC_PREFIXES):
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, handler.unary_unary, MethodMetrics(method, "unary")),  # type: ignore[arg-type]
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream, MethodMetrics(method, "server_stream")),  # type: ignore[arg-type]
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # client-streaming RPCs are not part of our contracts

    def _start(self, method: str, ctx: Ctx, attributes: dict[str, Any]) -> tuple[Any, object, dict[str, str]]:
        metadata = {k: v for k, v in (ctx.invocation_metadata() or ()) if isinstance(v, str)}
        parent = propagate.extract(metadata, getter=_GETTER)  # type: ignore[arg-type]
        span = spans.start(method, parent, SpanKind.SERVER, attributes)
        # One attach: the caller's context (trace, baggage) with our span in it.
        return span, otel_context.attach(trace.set_span_in_context(span, parent)), metadata

    def _span_attributes(self, method: str) -> dict[str, Any]:
        # Made once per method; the SDK copies them into each span.
        return {"rpc.system": "grpc", "rpc.method": method, "salesops.service": self.service}

    def _authenticate(
        self, method: str, ctx: Ctx, metadata: dict[str, str], span: Any
    ) -> tuple[float | None, Principal | None]:
        """Verify the caller and set the call context.

        Returns the deadline to enforce (if the client set none) and the principal when it
        is a partner's (the caller must still `_admit` it: a Redis round trip).
        """
        remaining = ctx.time_remaining()
        enforce = None if remaining is not None else self.default_deadline
        deadline = asyncio.get_running_loop().time() + (
            remaining if remaining is not None else self.default_deadline
        )
        if method in self.public:
            call.set_call(None, "", deadline)
            span.set_attribute("salesops.public_method", True)
            return enforce, None
        auth = metadata.get("authorization", "")
        try:
            principal = self._principals.verify_bearer(auth)
        except AuthError as exc:
            call.set_call(None, "", deadline)
            span.set_attribute("salesops.auth_refused", exc.reason)
            raise errors.Unauthenticated(
                f"authentication failed: {exc.reason}", reason=exc.reason.upper()
            ) from None
        span.set_attribute("enduser.id", principal.user_id)
        span.set_attribute("salesops.tenant", principal.tenant)
        if principal.is_partner:
            # Admin-only configuration opens to a partner only by the method's own scope.
            principal = replace(principal, method_granted=self.scopes.names_exactly(principal.scopes, method))
        call.set_call(principal, auth.split(" ", 1)[-1], deadline)
        if principal.is_partner:
            if not self.scopes.allows(principal.scopes, method):
                raise errors.PermissionDenied(
                    f"the partner key's scopes do not include {method.rsplit('/', 1)[-1]}",
                    reason="SCOPE_NOT_GRANTED",
                    metadata={"granting_scopes": " ".join(sorted(self.scopes.granting(method)))},
                )
            return enforce, principal
        return enforce, None

    async def _admit(self, partner: Principal) -> None:
        if self.partners is None:
            raise errors.Unauthenticated(
                "partner tokens are not accepted by this server", reason="PARTNER_TOKENS_OFF"
            )
        await self.partners.admit(partner)

    async def _fail(self, ctx: Ctx, method: str, span: Any, exc: BaseException) -> None:
        if isinstance(exc, errors.SalesopsError):
            span.set_attribute("rpc.grpc.status_code", exc.code_name)
            if isinstance(exc, errors.Unauthenticated):
                await ctx.send_initial_metadata((("www-authenticate", 'Bearer realm="salesops"'),))
            await ctx.abort_with_status(  # type: ignore[attr-defined]
                to_grpc_status(exc, self.service)
            )
        if isinstance(exc, NotImplementedError):
            # The generated base servicer answers this way for RPCs not built yet.
            await ctx.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not implemented yet")
        if isinstance(exc, TimeoutError):
            span.set_status(Status(StatusCode.ERROR, "deadline exceeded"))
            await ctx.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
        if isinstance(exc, grpc.aio.AioRpcError) and exc.code() in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
        ):
            span.set_status(Status(StatusCode.ERROR, exc.code().name))
            await ctx.abort(exc.code(), f"a dependency failed: {exc.code().name.lower()}")
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        sc = span.get_span_context()
        # The reference lets support find this log line; with tracing on it is the trace id.
        reference = format(sc.trace_id, "032x") if sc.is_valid else str(ULID())
        log.error("unhandled error in %s", method, exc_info=exc, extra={"error_reference": reference})
        await ctx.abort_with_status(  # type: ignore[attr-defined]
            internal_status(reference)
        )

    def _wrap_unary(
        self, method: str, behavior: Callable[[Any, Ctx], Awaitable[Any]], metrics: MethodMetrics
    ) -> Callable[[Any, Ctx], Awaitable[Any]]:
        attributes = self._span_attributes(method)

        async def run(request: Any, ctx: Ctx) -> Any:
            span, token, metadata = self._start(method, ctx, attributes)
            started, cancelled = metrics.start(), False
            try:
                enforce, partner = self._authenticate(method, ctx, metadata, span)
                if partner is not None:
                    await self._admit(partner)
                if enforce is None:
                    return await behavior(request, ctx)
                async with asyncio.timeout(enforce):
                    return await behavior(request, ctx)
            except asyncio.CancelledError:
                cancelled = True
                raise
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await self._fail(ctx, method, span, exc)
                raise
            finally:
                metrics.done(ctx, started, cancelled)
                _end(span, token)

        return run

    def _wrap_stream(
        self, method: str, behavior: Callable[[Any, Ctx], AsyncIterator[Any]], metrics: MethodMetrics
    ) -> Callable[[Any, Ctx], AsyncIterator[Any]]:
        # Streams (the live inbox) are long-lived by design: no default deadline.
        attributes = self._span_attributes(method)

        async def run(request: Any, ctx: Ctx) -> AsyncIterator[Any]:
            span, token, metadata = self._start(method, ctx, attributes)
            task = asyncio.current_task()
            metrics.start()
            cancelled = False
            try:
                _, partner = self._authenticate(method, ctx, metadata, span)
                if partner is not None:
                    await self._admit(partner)
                async for item in behavior(request, ctx):
                    yield item
            except (asyncio.CancelledError, GeneratorExit):
                cancelled = True
                raise
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await self._fail(ctx, method, span, exc)
                raise
            finally:
                metrics.done(ctx, None, cancelled)
                if asyncio.current_task() is task:
                    _end(span, token)
                else:
                    # Closed from another task (at shutdown the loop's async-generator finaliser
                    # closes open streams): the context our attach went into went with the serving
                    # task, and a detach here would only log OTel's "Failed to detach context".
                    span.end()

        return run


class PrincipalCache:
    """Verified tokens by value until they expire: a phone repeats its token on every call.

    A JWT cannot change, so the only thing that can turn a cached answer wrong is
    time; entries are re-checked against `exp` on every hit.
    """

    def __init__(self, verifier: TokenVerifier, size: int = 10_000) -> None:
        self.verifier = verifier
        self.size = size
        self._cache: dict[str, Principal] = {}

    def verify_bearer(self, header: str) -> Principal:
        found = self._cache.get(header)
        if found is not None:
            if found.expires_at > datetime.now(UTC):
                return found
            del self._cache[header]
        principal = self.verifier.verify_bearer(header)
        if len(self._cache) >= self.size:
            self._cache.pop(next(iter(self._cache)))  # oldest insertion first
        self._cache[header] = principal
        return principal


def _end(span: Any, token: Any) -> None:
    span.end()
    otel_context.detach(token)
