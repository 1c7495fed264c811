"""Readiness of the backends, asked over grpc.health.v1 with a short deadline."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kit.config import SERVICES, service_address

SERVING = health_pb2.HealthCheckResponse.SERVING


class BackendHealth:
    def __init__(self, addresses: dict[str, str] | None = None, timeout: float = 1.0) -> None:
        self.addresses = addresses or {name: service_address(name) for name in SERVICES}
        self.timeout = timeout
        self.channels: dict[str, grpc.aio.Channel] = {}

    def open(self) -> None:
        """Channels bind to the running event loop: open them inside it (the app's lifespan)."""
        self.channels = {name: grpc.aio.insecure_channel(addr) for name, addr in self.addresses.items()}

    async def _check(self, name: str) -> str:
        stub = health_pb2_grpc.HealthStub(self.channels[name])
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    async def statuses(self) -> dict[str, str]:
        names = list(self.channels)
        results = await asyncio.gather(*(self._check(n) for n in names))
        return dict(zip(names, results, strict=True))

    async def close(self) -> None:
        await asyncio.gather(*(ch.close(None) for ch in self.channels.values()))
