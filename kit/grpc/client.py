"""Outbound gRPC: channels whose calls carry the caller's deadline, identity and trace.

A call made while serving an RPC inherits what is left of that RPC's deadline
(never more than its own timeout), forwards the caller's bearer token unless a
service token is given, and injects W3C trace context.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from kit.grpc import context as call
from kit.grpc.balancing import BASE_OPTIONS, balanced_channel

tracer = trace.get_tracer("salesops.kit.grpc.client")

CHANNEL_OPTIONS: list[tuple[str, Any]] = BASE_OPTIONS  # kept for callers of the older name


class _Outbound:
    def __init__(self, default_timeout: float, token_source: Callable[[], str] | None) -> None:
        self.default_timeout = default_timeout
        self.token_source = token_source

    def _details(
        self, details: grpc.aio.ClientCallDetails, span: Any, *, streaming: bool = False
    ) -> grpc.aio.ClientCallDetails:
        timeout = details.timeout
        if not streaming:
            # Never wait longer than the call we are serving has left.
            timeout = timeout if timeout is not None else self.default_timeout
            remaining = call.time_remaining()
            if remaining is not None:
                timeout = min(timeout, remaining)
        metadata = grpc.aio.Metadata(*(tuple(details.metadata or ())))
        headers: dict[str, str] = {}
        propagate.inject(headers, context=trace.set_span_in_context(span))
        for key, value in headers.items():
            metadata[key] = value
        if "authorization" not in metadata:
            token = self.token_source() if self.token_source else call.bearer_token()
            if token:
                metadata["authorization"] = f"Bearer {token}"
        return grpc.aio.ClientCallDetails(
            details.method, timeout, metadata, details.credentials, details.wait_for_ready
        )

    def _span(self, details: grpc.aio.ClientCallDetails) -> Any:
        method = details.method.decode() if isinstance(details.method, bytes) else str(details.method)
        return tracer.start_span(method, kind=SpanKind.CLIENT, attributes={"rpc.system": "grpc"})


class UnaryClientInterceptor(_Outbound, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        span = self._span(client_call_details)
        try:
            call_ = await continuation(self._details(client_call_details, span), request)
            code = await call_.code()
            if code != grpc.StatusCode.OK:
                span.set_status(Status(StatusCode.ERROR, code.name))
            return call_
        finally:
            span.end()


class StreamClientInterceptor(_Outbound, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        span = self._span(client_call_details)
        try:
            # Streams are long-lived: only an explicit timeout applies.
            return await continuation(self._details(client_call_details, span, streaming=True), request)
        finally:
            span.end()


def channel(
    address: str, *, default_timeout: float = 10.0, token_source: Callable[[], str] | None = None
) -> grpc.aio.Channel:
    """A channel balanced over every replica of `address` (kit.grpc.balancing), TLS at the mesh."""
    interceptors: list[Any] = [
        UnaryClientInterceptor(default_timeout, token_source),
        StreamClientInterceptor(default_timeout, token_source),
    ]
    return balanced_channel(address, interceptors=interceptors)
