"""Long-lived gRPC channels to the services and generic unary / server-streaming calls.

No per-RPC code: a call is `channel.unary_unary(path, serializer, deserializer)`
built once per route and channel. Each channel is balanced (kit.grpc.balancing):
round_robin over every address the backend's setting resolves to, with retries
where the contract makes them safe. Several channels per backend, each with its
own connections, so one busy HTTP/2 connection per replica is never the limit.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import grpc

from gateway.routes import Route
from kit.grpc.balancing import balanced_channel


class Backends:
    def __init__(self, addresses: dict[str, str], channels_per_backend: int = 2) -> None:
        self.addresses = addresses
        self.per_backend = channels_per_backend
        self.channels: dict[str, list[grpc.aio.Channel]] = {}
        self._calls: dict[tuple[str, int], Any] = {}
        self._turn = itertools.count()

    def open(self) -> None:
        """Channels bind to the running event loop: open them inside it (the app's lifespan)."""
        self.channels = {
            name: [balanced_channel(addr) for _ in range(self.per_backend)]
            for name, addr in self.addresses.items()
        }
        self._calls.clear()

    def _callable(self, route: Route) -> Any:
        channels = self.channels.get(route.backend)
        if not channels:
            raise LookupError(f"no address configured for backend {route.backend!r}")
        index = next(self._turn) % len(channels)
        key = (route.grpc_path, index)
        found = self._calls.get(key)
        if found is None:
            make = channels[index].unary_stream if route.server_streaming else channels[index].unary_unary
            found = make(
                route.grpc_path,
                request_serializer=route.request_cls.SerializeToString,
                response_deserializer=route.response_cls.FromString,
            )
            self._calls[key] = found
        return found

    async def unary(self, route: Route, request: Any, metadata: list[tuple[str, str]], timeout: float) -> Any:
        return await self._callable(route)(request, metadata=metadata, timeout=timeout)

    def stream(self, route: Route, request: Any, metadata: list[tuple[str, str]]) -> Any:
        # Streams are long-lived: no deadline, the client's disconnect cancels them.
        return self._callable(route)(request, metadata=metadata)

    async def close(self) -> None:
        await asyncio.gather(*(ch.close(None) for chans in self.channels.values() for ch in chans))
