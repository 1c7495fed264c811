"""Group commit for CreateLead: the calls of one tenant that arrive while one of its intakes is in
its transaction wait, then are decided together in one transaction by the batch intake
(imports.intake_rows: rows in arrival order, each seeing the ones before it), one commit for all.

A lone call runs at once, as before (no added latency). Each caller still gets its own answer: its
replay, its validation error, its lead as it may see it. If the group's transaction fails as a
whole (a database error, a unique race lost twice), every caller in it is served alone instead.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from kit.auth import Principal
from kit.errors import SalesopsError
from salesops.leads.v1 import leads_service_pb2 as pb

log = logging.getLogger("salesops.leads.intake")

MAX_GROUP = 250  # rows per transaction, as an import's batch

# What a waiting call is told: its answer, its own error, or None (serve yourself alone).
Answer = pb.CreateLeadResponse | SalesopsError | None


@dataclass
class Waiting:
    """A CreateLead waiting for the tenant's running intake to finish."""

    who: Principal
    request: pb.CreateLeadRequest
    at: datetime
    intake_id: str
    answer: asyncio.Future[Answer]


@dataclass
class _Tenant:
    busy: bool = False
    queue: list[Waiting] = field(default_factory=list)


Alone = Callable[[Principal, pb.CreateLeadRequest, datetime], Awaitable[pb.CreateLeadResponse]]
Group = Callable[[str, list[Waiting]], Awaitable[list[pb.CreateLeadResponse | SalesopsError]]]


class IntakeGroups:
    """Per tenant: at most one intake transaction of CreateLead calls at a time, the rest grouped."""

    def __init__(self, alone: Alone, group: Group, max_group: int = MAX_GROUP) -> None:
        self._alone, self._group, self._max = alone, group, max_group
        self._tenants: dict[str, _Tenant] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def create(
        self, who: Principal, request: pb.CreateLeadRequest, at: datetime, intake_id: str
    ) -> pb.CreateLeadResponse:
        t = self._tenants.setdefault(who.tenant, _Tenant())
        if not t.busy:
            t.busy = True
            try:
                return await self._alone(who, request, at)
            finally:
                self._next(who.tenant, t)
        waiting = Waiting(who, request, at, intake_id, asyncio.get_running_loop().create_future())
        t.queue.append(waiting)
        got = await waiting.answer  # a caller cancelled here is skipped, or its answer dropped
        if got is None:
            return await self._alone(who, request, at)
        if isinstance(got, SalesopsError):
            raise got
        return got

    def _next(self, tenant: str, t: _Tenant) -> None:
        """The tenant's transaction ended: start the next group, or the tenant is idle."""
        live = [w for w in t.queue if not w.answer.done()]
        if not live:
            t.busy, t.queue = False, []
            self._tenants.pop(tenant, None)
            return
        taken, t.queue = live[: self._max], live[self._max :]
        # A context of its own: not the one of the call that happened to end last (its principal,
        # its deadline, the SQLite writer's turn it held).
        task = asyncio.get_running_loop().create_task(
            self._run(tenant, t, taken), context=contextvars.Context()
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, tenant: str, t: _Tenant, taken: list[Waiting]) -> None:
        try:
            log.debug("CreateLead group of %d in one transaction", len(taken))
            answers = await self._group(tenant, taken)
            for w, a in zip(taken, answers, strict=True):
                if not w.answer.done():
                    w.answer.set_result(a)
        except Exception:
            log.warning("grouped CreateLead transaction failed; serving its %d calls alone", len(taken))
        finally:
            for w in taken:  # failed or cancelled as a whole: each caller runs its own
                if not w.answer.done():
                    w.answer.set_result(None)
            self._next(tenant, t)
