"""Readiness of the backends, asked over grpc.health.v1 with a short deadline.

`/readyz` needs no token, so its answer is shared: concurrent callers wait for the same
round of checks and its result serves for `ttl` seconds. A flood of /readyz then costs
the services at most one check each per `ttl`, instead of one each per request.
"""

from __future__ import annotations

import asyncio
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kit.config import SERVICES, service_address
from kit.grpc.balancing import balanced_channel

SERVING = health_pb2.HealthCheckResponse.SERVING


class BackendHealth:
    def __init__(
        self, addresses: dict[str, str] | None = None, timeout: float = 1.0, ttl: float = 1.0
    ) -> None:
        self.addresses = addresses or {name: service_address(name) for name in SERVICES}
        self.timeout = timeout
        self.ttl = ttl
        self.channels: dict[str, grpc.aio.Channel] = {}
        self._last: tuple[float, dict[str, str]] | None = None
        self._round: asyncio.Future[dict[str, str]] | None = None

    def open(self) -> None:
        """Channels bind to the running event loop: open them inside it (the app's lifespan)."""
        self.channels = {name: balanced_channel(addr) for name, addr in self.addresses.items()}

    async def _check(self, name: str) -> str:
        stub = health_pb2_grpc.HealthStub(self.channels[name])
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    async def statuses(self) -> dict[str, str]:
        if self._last is not None and time.monotonic() - self._last[0] < self.ttl:
            return dict(self._last[1])
        if self._round is None:
            self._round = asyncio.ensure_future(self._check_all())
        # Shielded: one caller going away does not cancel the round the others wait for.
        return dict(await asyncio.shield(self._round))

    async def _check_all(self) -> dict[str, str]:
        try:
            names = list(self.channels)
            results = await asyncio.gather(*(self._check(n) for n in names))
            found = dict(zip(names, results, strict=True))
            self._last = (time.monotonic(), found)
            return found
        finally:
            self._round = None

    async def close(self) -> None:
        await asyncio.gather(*(ch.close(None) for ch in self.channels.values()))
