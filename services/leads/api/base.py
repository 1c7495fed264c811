"""What every resource module of the leads API shares: the runtime and the service's units of work."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import grpc

from kit.auth import Principal
from kit.resources import UnitOfWork
from kit.runtime import Runtime
from salesops.leads.v1 import lead_pb2
from services.leads import lead_views
from services.leads.store import LeadRow, transactions

T = TypeVar("T")
Ctx = grpc.aio.ServicerContext[Any, Any]


def me(who: Principal, values: Iterable[str]) -> list[str]:
    """User id lists where "me" is the caller."""
    return [who.user_id if v == "me" else v for v in values]


class ApiBase:
    """Thin by design: parse and check the request, run one use case in one unit of work, present."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.tx = transactions(rt.db)

    async def write(self, who: Principal, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """Run `work` in one transaction; committed once, by the unit of work."""
        return await self.tx.run(who.tenant, work)

    def read(self, who: Principal) -> AbstractAsyncContextManager[UnitOfWork]:
        return self.tx.read(who.tenant)

    async def changed_lead(
        self, who: Principal, change: Callable[[UnitOfWork], Awaitable[LeadRow]]
    ) -> lead_pb2.Lead:
        """Run a use case that changes one lead, in one unit of work; answer the lead as `who` may see it."""

        async def work(uow: UnitOfWork) -> lead_pb2.Lead:
            return await lead_views.present(uow, who, await change(uow))

        return await self.write(who, work)

    def dry_run(self, who: Principal) -> AbstractAsyncContextManager[UnitOfWork]:
        """For validate_only requests: the whole use case runs, events included, and is rolled back."""
        return _rolled_back(self, who.tenant)


@asynccontextmanager
async def _rolled_back(api: ApiBase, tenant: str) -> AsyncIterator[UnitOfWork]:
    async with api.rt.db.session(tenant) as session:
        yield UnitOfWork(session, tenant, source=api.tx.source, outbox=api.tx.outbox, tokens=api.tx.tokens)
        await session.rollback()
