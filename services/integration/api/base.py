"""What every resource module of the integration API shares: the runtime, units of work, the outbound client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc

from kit.auth import Principal
from kit.net import OutboundPolicy, SafeClient
from kit.resources import UnitOfWork
from kit.runtime import Runtime
from services.integration.store import transactions

T = TypeVar("T")
Ctx = grpc.aio.ServicerContext[Any, Any]


def now() -> datetime:
    return datetime.now(UTC)


class ApiBase:
    """Thin by design: parse and check the request, run one use case in one unit of work, present."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.tx = transactions(rt.db)
        self._client: SafeClient | None = None

    @property
    def outbound(self) -> SafeClient:
        # Built on first use (inside the serving loop); SALESOPS_OUTBOUND_ALLOW names loopback test systems.
        if self._client is None:
            self._client = SafeClient(OutboundPolicy.from_env())
        return self._client

    async def write(self, who: Principal, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        return await self.tx.run(who.tenant, work)

    def read(self, who: Principal) -> AbstractAsyncContextManager[UnitOfWork]:
        return self.tx.read(who.tenant)
