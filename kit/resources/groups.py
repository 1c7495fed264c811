"""Group commit: per key (a tenant), at most one batch in its transaction at a time; the items that
arrive meanwhile wait, then go together in the next batch, one commit for all.

Why: a burst of small write transactions of one tenant takes turns on the database's writer
(SQLite has one), and each pays the transaction's fixed cost (the writer's turn, BEGIN, the
tenant's policy reads, COMMIT). Grouped, that is paid once per batch. Used by leads' CreateLead
intake and SLA fires and by integration's inbound webhooks.

A lone item runs at once (no added latency). With a linger (opt-in), after a batch that answered
at least as many callers as now wait, the next batch waits up to that long for the answered ones to
come back: callers that send again on an answer then go together, and the batches do not split (a
lone item paying a whole transaction, the rest behind it); the price, an item arriving then may
wait up to the linger. Each caller gets its own answer. If a batch fails as a whole (a database
error, a conflict), each of its callers runs alone instead, so one bad item never fails the others;
a caller cancelled while waiting is skipped, or its answer dropped.
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
    want: int = 0  # while lingering: the queue's length that starts the batch at once
    linger: asyncio.TimerHandle | None = None


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
        linger: float = 0.0,
    ) -> None:
        self._alone, self._together, self._max, self._what = alone, together, max_group, what
        self._linger = linger  # seconds; 0: none
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
                self._next(key, k, 1)
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        k.queue.append((item, answer))
        if k.linger is not None and len(k.queue) >= k.want:
            self._linger_over(key, k)
        got = await answer
        return await self._alone(key, item) if got is _ALONE else got  # type: ignore[no-any-return]

    def _next(self, key: str, k: _Key, answered: int) -> None:
        """The key's transaction ended, having answered `answered` callers (or a linger ended: 0):
        start the next batch, linger for the callers just answered, or the key is idle."""
        live = [w for w in k.queue if not w[1].done()]
        k.queue = live
        if self._linger and answered > 1 and answered >= len(live) and len(live) < self._max:
            # No more wait than were just answered. Callers that send their next item on an answer
            # (a client's N in flight) are back within a round trip; started now, the batch would
            # be those that came while the last one ran, the rest would wait a whole turn behind
            # it, and the batches would stay split (1 and 15, or 8 and 8, of 16 in flight, each
            # paying the transaction's fixed cost). Wait for them a little: the batch starts as
            # soon as those waiting and those answered are all back, or when the linger ends.
            k.want = min(self._max, len(live) + answered)
            k.linger = asyncio.get_running_loop().call_later(self._linger, self._linger_over, key, k)
            return
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

    def _linger_over(self, key: str, k: _Key) -> None:
        """Enough came back, or the linger's time is up: the next batch with those waiting, if any."""
        if k.linger is not None:
            k.linger.cancel()
            k.linger = None
            self._next(key, k, 0)

    async def _run(self, key: str, k: _Key, taken: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        answered = 0  # a failed batch's callers run alone: none to linger for
        try:
            log.debug("%s group of %d in one transaction", self._what, len(taken))
            answers = await self._together(key, [item for item, _ in taken])
            if len(answers) != len(taken):
                raise RuntimeError(f"{len(answers)} answers for {len(taken)} items")
            if len(taken) > 1:
                self.grouped += 1
            live = 0  # the callers answered now (a cancelled one will not come back)
            for (_, answer), got in zip(taken, answers, strict=True):
                if not answer.done():
                    answer.set_result(got)
                    live += 1
            answered = live
        except Exception:
            log.warning("grouped %s transaction failed; running its %d alone", self._what, len(taken))
        finally:
            for _, answer in taken:  # failed or cancelled as a whole: each caller runs its own
                if not answer.done():
                    answer.set_result(_ALONE)
            self._next(key, k, answered)
