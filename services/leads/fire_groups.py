"""Group commit for the watch's fires: the fires of one tenant that arrive while one of its fire
transactions runs wait, then run together in one transaction (each fire's own work, in arrival
order, each seeing the ones before it), one commit for all.

A burst of reminders due in the same second is a thousand small write transactions that take turns
on the database's writer (SQLite has one); each also holds a workflow task slot of the worker while
its local activity waits for that turn. Grouped, the transaction's fixed cost (the writer's turn,
BEGIN, the policy versions read, COMMIT) is paid once per group instead of once per fire.

A lone fire runs at once, as before (no added latency). Each fire keeps its own answer. If the
group's transaction fails as a whole (a database error, a conflict), every fire in it runs alone
instead, so one bad lead never fails the others; a fire's work re-checks the lead, so running it
again never applies a timer twice.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kit.resources import Transactions, UnitOfWork

log = logging.getLogger("salesops.leads.watch")

MAX_GROUP = 100  # fires per transaction: bounds the writer's turn (about 1-2 ms of work each)

Work = Callable[[UnitOfWork], Awaitable[Any]]


@dataclass
class _Waiting:
    work: Work
    # Set to (True, result) once its group committed, (False, None) to run alone.
    answer: asyncio.Future[tuple[bool, Any]]


@dataclass
class _Tenant:
    busy: bool = False
    queue: list[_Waiting] = field(default_factory=list)


class FireGroups:
    """Per tenant: at most one fire transaction at a time, the fires that arrive meanwhile grouped."""

    def __init__(self, tx: Transactions, max_group: int = MAX_GROUP) -> None:
        self._tx, self._max = tx, max_group
        self._tenants: dict[str, _Tenant] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.groups = 0  # transactions that ran more than one fire (for tests and diagnosis)

    async def run(self, tenant: str, work: Work) -> Any:
        t = self._tenants.setdefault(tenant, _Tenant())
        if not t.busy:
            t.busy = True
            try:
                return await self._tx.run(tenant, work)
            finally:
                self._next(tenant, t)
        waiting = _Waiting(work, asyncio.get_running_loop().create_future())
        t.queue.append(waiting)
        done, result = await waiting.answer  # a fire cancelled here is skipped, or its answer dropped
        return result if done else await self._tx.run(tenant, work)

    def _next(self, tenant: str, t: _Tenant) -> None:
        """The tenant's fire transaction ended: start the next group, or the tenant is idle."""
        live = [w for w in t.queue if not w.answer.done()]
        if not live:
            t.busy, t.queue = False, []
            self._tenants.pop(tenant, None)
            return
        taken, t.queue = live[: self._max], live[self._max :]
        # A context of its own: not the one of the fire that happened to end last (its activity
        # context, the SQLite writer's turn it held).
        task = asyncio.get_running_loop().create_task(
            self._run(tenant, t, taken), context=contextvars.Context()
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, tenant: str, t: _Tenant, taken: list[_Waiting]) -> None:
        async def together(uow: UnitOfWork) -> list[Any]:
            async with uow.gathered_events():  # the group's events in one outbox statement
                return [await w.work(uow) for w in taken]

        try:
            results = await self._tx.run(tenant, together)
            if len(taken) > 1:
                self.groups += 1
            for w, r in zip(taken, results, strict=True):
                if not w.answer.done():
                    w.answer.set_result((True, r))
        except Exception:
            log.warning("grouped watch fire transaction failed; running its %d fires alone", len(taken))
        finally:
            for w in taken:  # failed or cancelled as a whole: each fire runs alone
                if not w.answer.done():
                    w.answer.set_result((False, None))
            self._next(tenant, t)
