"""What every resource module of the pipeline API shares: the runtime and the service's units of work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import grpc

from kit.auth import Principal
from kit.resources import UnitOfWork
from kit.runtime import Runtime
from services.pipeline.store import transactions

T = TypeVar("T")
Ctx = grpc.aio.ServicerContext[Any, Any]


class ApiBase:
    """Thin by design: parse and check the request, run one use case in one unit of work, present."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.tx = transactions(rt.db)

    async def write(self, who: Principal, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """Run `work` in one transaction; committed once, by the unit of work."""
        return await self.tx.run(who.tenant, work)

    def read(self, who: Principal, *, snapshot: bool = True) -> AbstractAsyncContextManager[UnitOfWork]:
        """A read-only unit of work. `snapshot=False` for a read of one statement: no transaction
        (on SQLite no BEGIN and ROLLBACK, a hand-off to the connection's thread less; kit.db)."""
        return self.tx.read(who.tenant, snapshot=snapshot)
