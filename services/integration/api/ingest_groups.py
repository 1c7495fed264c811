"""IngestWebhook's plumbing: group commit of a tenant's concurrent deliveries, and the receivers
(connector snapshots, secret unsealed) their signatures are checked against.

Group commit: while one write transaction of a tenant's deliveries runs, the deliveries that
arrive wait, then are written together in the next one (webhooks.record: one commit, a few
statements for all). A lone delivery is written at once (no added latency). Each caller gets
its own answer; if a group's transaction fails as a whole, each of its callers is written
alone instead. (The same shape as leads' CreateLead intake groups; services share no code, so
if a third user appears, the queue belongs in kit as plumbing.)

Receivers: the connector row read, its secret unsealed and its config parsed once per version
instead of per delivery. A snapshot only ever lets a delivery in together with the write
transaction's check that the row's stamp (version, creation, sealed secrets) is unchanged, so a
rotated, disabled or deleted connector's old secret is refused at its first use and dropped.
A refusal is never decided on a snapshot: the current row decides it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.integration.store import ReceivedWebhookRow
from services.integration.webhooks import Delivery, Receiver

log = logging.getLogger("salesops.integration.ingest")

MAX_GROUP = 100  # deliveries per transaction
MAX_RECEIVERS = 1024  # snapshots kept (per process), the least recently stored dropped first

Recorded = tuple[ReceivedWebhookRow, bool] | None  # None: verify again (the connector changed)
Write = Callable[[str, list[Delivery]], Awaitable[list[Recorded]]]


class _Alone:
    """A waiting delivery's answer when its group failed: write it in a transaction of its own."""


ALONE = _Alone()


@dataclass
class _Waiting:
    delivery: Delivery
    answer: asyncio.Future[Recorded | _Alone]


@dataclass
class _Tenant:
    busy: bool = False
    queue: list[_Waiting] = field(default_factory=list)


class IngestGroups:
    """Per tenant: at most one write transaction of deliveries at a time, the rest grouped."""

    def __init__(self, write: Write, max_group: int = MAX_GROUP) -> None:
        self._write, self._max = write, max_group
        self._tenants: dict[str, _Tenant] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def record(self, tenant: str, delivery: Delivery) -> Recorded:
        t = self._tenants.setdefault(tenant, _Tenant())
        if not t.busy:
            t.busy = True
            try:
                return (await self._write(tenant, [delivery]))[0]
            finally:
                self._next(tenant, t)
        waiting = _Waiting(delivery, asyncio.get_running_loop().create_future())
        t.queue.append(waiting)
        got = await waiting.answer  # a caller cancelled here is skipped, or its answer dropped
        if isinstance(got, _Alone):
            return (await self._write(tenant, [delivery]))[0]
        return got

    def _next(self, tenant: str, t: _Tenant) -> None:
        """The tenant's transaction ended: start the next group, or the tenant is idle."""
        live = [w for w in t.queue if not w.answer.done()]
        if not live:
            t.busy, t.queue = False, []
            self._tenants.pop(tenant, None)
            return
        taken, t.queue = live[: self._max], live[self._max :]
        # A context of its own: not the one of the call that happened to end last (its deadline,
        # the SQLite writer's turn it held).
        task = asyncio.get_running_loop().create_task(
            self._run(tenant, t, taken), context=contextvars.Context()
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, tenant: str, t: _Tenant, taken: list[_Waiting]) -> None:
        try:
            answers = await self._write(tenant, [w.delivery for w in taken])
            for w, a in zip(taken, answers, strict=True):
                if not w.answer.done():
                    w.answer.set_result(a)
        except Exception:
            log.warning("grouped webhook transaction failed; writing its %d deliveries alone", len(taken))
        finally:
            for w in taken:  # failed or cancelled as a whole: each caller writes its own
                if not w.answer.done():
                    w.answer.set_result(ALONE)
            self._next(tenant, t)


class Receivers:
    """Snapshots by (tenant, connector id); bounded. Holds unsealed secrets: never presented, and
    replaced or dropped as soon as a write finds the row changed."""

    def __init__(self, limit: int = MAX_RECEIVERS) -> None:
        self._limit = limit
        self._found: dict[tuple[str, str], Receiver] = {}

    def get(self, tenant: str, connector_id: str) -> Receiver | None:
        return self._found.get((tenant, connector_id))

    def put(self, tenant: str, found: Receiver) -> None:
        key = (tenant, found.connector_id)
        self._found.pop(key, None)
        while len(self._found) >= self._limit:
            self._found.pop(next(iter(self._found)))
        self._found[key] = found

    def drop(self, tenant: str, connector_id: str) -> None:
        self._found.pop((tenant, connector_id), None)
