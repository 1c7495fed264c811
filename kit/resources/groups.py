"""Group commit: per key (a tenant), at most one batch in its transaction at a time; the items that
arrive meanwhile wait, then go together in the next batch, one commit for all.

Why: a burst of small write transactions of one tenant takes turns on the database's writer
(SQLite has one), and each pays the transaction's fixed cost (the writer's turn, BEGIN, the
tenant's policy reads, COMMIT). Grouped, that is paid once per batch. Used by leads' CreateLead
intake and SLA fires and by integration's inbound webhooks.

A lone item runs at once (no added latency). Each caller gets its own answer. If a batch fails as
a whole (a database error, a conflict), each of its callers runs alone instead, so one bad item
never fails the others; a caller cancelled while waiting is skipped, or its answer dropped.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger("salesops.groups")

T = TypeVar("T")
R = TypeVar("R")
_ALONE: Any = object()  # a waiting caller's answer when its batch failed: run alone


@dataclass
class _Key:
    busy: bool = False
    queue: list[tuple[Any, asyncio.Future[Any]]] = field(default_factory=list)


class GroupCommit(Generic[T, R]):
    """`alone(key, item)` runs one item in its own transaction; `together(key, items)` runs a batch
    in one and answers each item, in order. At most `max_group` items per batch."""

    def __init__(
        self,
        alone: Callable[[str, T], Awaitable[R]],
        together: Callable[[str, list[T]], Awaitable[Sequence[R]]],
        *,
        max_group: int,
        what: str,
    ) -> None:
        self._alone, self._together, self._max, self._what = alone, together, max_group, what
        self._keys: dict[str, _Key] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.grouped = 0  # batches of more than one item that committed (tests, diagnosis)

    async def submit(self, key: str, item: T) -> R:
        k = self._keys.setdefault(key, _Key())
        if not k.busy:
            k.busy = True
            try:
                return await self._alone(key, item)
            finally:
                self._next(key, k)
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        k.queue.append((item, answer))
        got = await answer
        return await self._alone(key, item) if got is _ALONE else got  # type: ignore[no-any-return]

    def _next(self, key: str, k: _Key) -> None:
        """The key's transaction ended: start the next batch, or the key is idle."""
        live = [w for w in k.queue if not w[1].done()]
        if not live:
            k.busy, k.queue = False, []
            self._keys.pop(key, None)
            return
        taken, k.queue = live[: self._max], live[self._max :]
        # A context of its own: not the one of the call that happened to end last (its principal,
        # its deadline, the SQLite writer's turn it held).
        task = asyncio.get_running_loop().create_task(self._run(key, k, taken), context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: str, k: _Key, taken: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        try:
            log.debug("%s group of %d in one transaction", self._what, len(taken))
            answers = await self._together(key, [item for item, _ in taken])
            if len(taken) > 1:
                self.grouped += 1
            for (_, answer), got in zip(taken, answers, strict=True):
                if not answer.done():
                    answer.set_result(got)
        except Exception:
            log.warning("grouped %s transaction failed; running its %d alone", self._what, len(taken))
        finally:
            for _, answer in taken:  # failed or cancelled as a whole: each caller runs its own
                if not answer.done():
                    answer.set_result(_ALONE)
            self._next(key, k)
