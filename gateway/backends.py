"""Long-lived gRPC channels to the services and generic unary / server-streaming calls.

No per-RPC code: a call is `channel.unary_unary(path, serializer, deserializer)`
built once per route and channel. Each channel is balanced (kit.grpc.balancing):
round_robin over every address the backend's setting resolves to, with retries
where the contract makes them safe. Several channels per backend, each with its
own connections, so one busy HTTP/2 connection per replica is never the limit.

The channels carry no interceptor: grpc.aio runs any interceptor chain in a task and a wrapper
call of its own for every call, even when the interceptor only passes the call on, which the
kit's ClientKeyRetry does for all but the methods with a client-made key. The gateway applies
that same ClientKeyRetry itself, to those methods only; gRPC's own retries of read-only methods
come with the channel options (`channel_options`), as in `balanced_channel`.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import grpc

from gateway.routes import Route
from kit.grpc.balancing import ClientKeyRetry, channel_options, channel_target, retry_plan


def _channel(address: str) -> grpc.aio.Channel:
    """`balanced_channel` without its interceptor (applied per call by `Backends.unary`)."""
    return grpc.aio.insecure_channel(channel_target(address), options=channel_options())


class Backends:
    def __init__(self, addresses: dict[str, str], channels_per_backend: int = 2) -> None:
        self.addresses = addresses
        self.per_backend = channels_per_backend
        self.channels: dict[str, list[grpc.aio.Channel]] = {}
        self._calls: dict[tuple[str, int, bool], Any] = {}
        self._turn = itertools.count()
        self._retry = ClientKeyRetry()
        self._keyed = frozenset(retry_plan().client_key)

    def open(self) -> None:
        """Channels bind to the running event loop: open them inside it (the app's lifespan)."""
        self.channels = {
            name: [_channel(addr) for _ in range(self.per_backend)] for name, addr in self.addresses.items()
        }
        self._calls.clear()

    def _callable(self, route: Route, wire: bool = False) -> Any:
        channels = self.channels.get(route.backend)
        if not channels:
            raise LookupError(f"no address configured for backend {route.backend!r}")
        index = next(self._turn) % len(channels)
        key = (route.grpc_path, index, wire)
        found = self._calls.get(key)
        if found is None:
            make = channels[index].unary_stream if route.server_streaming else channels[index].unary_unary
            found = make(
                route.grpc_path,
                request_serializer=route.request_cls.SerializeToString,
                response_deserializer=None if wire else route.response_cls.FromString,
            )
            self._calls[key] = found
        return found

    async def unary(
        self,
        route: Route,
        request: Any,
        metadata: list[tuple[str, str]],
        timeout: float,
        *,
        wire: bool = False,
    ) -> Any:
        """The reply message; `wire`: its serialized bytes instead (transcode.answer_json parses
        them only when their JSON is not known already)."""
        call = self._callable(route, wire)
        if route.grpc_path not in self._keyed:
            return await call(request, metadata=metadata, timeout=timeout)

        async def attempt(details: grpc.aio.ClientCallDetails, message: Any) -> Any:
            return call(message, metadata=details.metadata, timeout=details.timeout)

        details = grpc.aio.ClientCallDetails(route.grpc_path, timeout, metadata, None, None)  # type: ignore[arg-type]
        return await (await self._retry.intercept_unary_unary(attempt, details, request))

    def stream(self, route: Route, request: Any, metadata: list[tuple[str, str]]) -> Any:
        # Streams are long-lived: no deadline, the client's disconnect cancels them.
        return self._callable(route)(request, metadata=metadata)

    async def close(self) -> None:
        await asyncio.gather(*(ch.close(None) for chans in self.channels.values() for ch in chans))
