"""Group commit for the watch's fires (kit's GroupCommit, by tenant): the fires of one tenant that arrive while one of its fire
transactions runs wait, then run together in one transaction (each fire's own work, in arrival
order, each seeing the ones before it), one commit for all.

A burst of reminders due in the same second is a thousand small write transactions that take turns
on the database's writer (SQLite has one); each also holds a workflow task slot of the worker while
its local activity waits for that turn. Grouped, the transaction's fixed cost (the writer's turn,
BEGIN, the policy versions read, COMMIT) is paid once per group instead of once per fire, and so
are the group's lead reads (`prefetch`: one SELECT for all its leads; each fire's own read was
about half of its CPU) and their writes (one flush at the commit).

A lone fire runs at once, as before (no added latency). Each fire keeps its own answer. If the
group's transaction fails as a whole (a database error, a conflict), every fire in it runs alone
instead, so one bad lead never fails the others; a fire's work re-checks the lead, so running it
again never applies a timer twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kit.resources import GroupCommit, Transactions, UnitOfWork

MAX_GROUP = 100  # fires per transaction: bounds the writer's turn (about 1-2 ms of work each)
# After a group, the next waits up to this long for as many fires as it answered: their workflow
# tasks end and the worker polls the next ones of a burst, whose fires come back within a round trip.
# Started at once, the next "group" was the one fire that happened to be queued (a third of a
# burst's fire transactions ran alone, each paying the transaction's fixed cost). A lone fire
# (nothing grouped before it) never waits.
LINGER_S = 0.02

Work = Callable[[UnitOfWork], Awaitable[Any]]
# Reads what a group's fires need in one go, before their work (e.g. their leads, locked).
Prefetch = Callable[[UnitOfWork, list[str]], Awaitable[None]]


class FireGroups:
    """Per tenant: at most one fire transaction at a time, the fires that arrive meanwhile grouped."""

    def __init__(
        self, tx: Transactions, max_group: int = MAX_GROUP, prefetch: Prefetch | None = None
    ) -> None:
        async def alone(tenant: str, fire: tuple[str, Work]) -> Any:
            return await tx.run(tenant, fire[1])

        async def together(tenant: str, fires: list[tuple[str, Work]]) -> list[Any]:
            async def all_of(uow: UnitOfWork) -> list[Any]:
                if prefetch is not None:
                    await prefetch(uow, [subject for subject, _ in fires])
                async with uow.gathered_events():  # the group's events in one outbox statement
                    return [await work(uow) for _, work in fires]

            return await tx.run(tenant, all_of)

        self._groups: GroupCommit[tuple[str, Work], Any] = GroupCommit(
            alone, together, max_group=max_group, what="watch fire", linger=LINGER_S
        )

    @property
    def groups(self) -> int:
        """Transactions that ran more than one fire (for tests and diagnosis)."""
        return self._groups.grouped

    async def run(self, tenant: str, work: Work, subject: str = "") -> Any:
        """`work` in a transaction of the tenant's, alone or with others; `subject` (a lead id) is
        what `prefetch` reads for it when grouped."""
        return await self._groups.submit(tenant, (subject, work))
