# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""Demo history of card uses, feedback and deal outcomes, so recommendations show lift on first start.

`make run` calls `demo_history` after READY (ServiceSpec.demo_backfill). Past deals are
written the way the pipeline-events consumer writes them (`deal_outcomes.apply_deal_event`:
created, moved through the stages, won or lost) and the cards used on them the way
RecordSopCardUse and SubmitCardFeedback do (`uses.record_use`, `uses.submit_feedback`),
each step in its own unit of work at a past time, so projection, lift cache, uses, duties
and feedback are what a real past would have left. These past deals live in knowledge's
projection only ("demo-past-..."); pipeline's own demo history adds its deals through the
consumer as usual.

Three cells: manufacturing deals that reached negotiation (card 02 used on 14 of 30,
enough data for a lift; card 19 on 4: not enough data), retail deals that reached
proposal / quote (card 10 on 12 of 24; card 04 on 3) and healthcare deals that reached
needs confirmed (card 16 on 5 of 10: not enough data). The uses of this week, with duties
in every state, are seed_uses.py's (through the API, at start).

Idempotent: a deal already in the projection is skipped.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from kit.auth import Principal
from kit.config import Settings
from kit.db import Database
from kit.errors import Unavailable
from kit.resources import Transactions, UnitOfWork
from kit.seeding import SeedClients, SeedUser
from salesops.knowledge.v1 import usage_pb2 as u
from salesops.pipeline.v1 import deal_pb2
from salesops.pipeline.v1 import events_pb2 as ev
from services.knowledge import deal_outcomes, uses
from services.knowledge.repositories.outcomes import Deals
from services.knowledge.store import transactions

log = logging.getLogger("salesops.knowledge.seed")
STAGES = ("initial_contact", "needs_confirmed", "solution_confirmed", "proposal_quote", "negotiation")
REPS = ("rep-a1", "rep-a2", "rep-a3", "rep-a4", "rep-b1", "rep-b2", "rep-b3", "rep-b4")
STATUS = {True: deal_pb2.DEAL_STATUS_WON, False: deal_pb2.DEAL_STATUS_LOST}
LIKED = u.CardFeedback(rating=u.FEEDBACK_RATING_FULLY)
PARTLY = u.CardFeedback(
    rating=u.FEEDBACK_RATING_PARTLY,
    reason_category=u.FEEDBACK_REASON_CATEGORY_MISSING_STEP,
    reason="客户还要求看同行业的交付周期，卡片里没有",
)
MISFIT = u.CardFeedback(
    rating=u.FEEDBACK_RATING_NOT_APPLICABLE,
    reason_category=u.FEEDBACK_REASON_CATEGORY_WRONG_CONTEXT,
    reason="Buyer was procurement-led; the card assumes a technical champion",
)


@dataclass(frozen=True)
class Cell:
    key: str
    industry: str
    stage: str  # the stage every deal of the cell reached (and closed from)
    deals: int
    won: frozenset[int]  # which deal numbers were won
    cards: tuple[tuple[str, frozenset[int]], ...]  # card -> the deal numbers it was used on


CELLS = (
    Cell(
        "m", "manufacturing", "negotiation", 30,
        won=frozenset([*range(10), *range(14, 19)]),  # card 02's 14 deals: 10 won; the other 16: 5 won
        cards=(("demo-card-02", frozenset(range(14))), ("demo-card-19", frozenset({2, 11, 20, 25}))),
    ),
    Cell(
        "r", "retail", "proposal_quote", 24,
        won=frozenset([*range(7), *range(12, 17)]),  # card 10's 12 deals: 7 won; the other 12: 5 won
        cards=(("demo-card-10", frozenset(range(12))), ("demo-card-04", frozenset({3, 15, 21}))),
    ),
    Cell(
        "h", "healthcare", "needs_confirmed", 10,
        won=frozenset({0, 1, 2, 6, 7}),
        cards=(("demo-card-16", frozenset(range(5))),),
    ),
)  # fmt: skip


def principal(user: SeedUser, tenant: str) -> Principal:
    return Principal(user.user_id, tenant, frozenset(user.roles), user.org, datetime.max.replace(tzinfo=UTC))


def feedback_for(cell: Cell, n: int, won: bool) -> u.CardFeedback:
    if won:
        return PARTLY if n % 5 == 4 else LIKED
    return MISFIT if n % 3 == 0 else PARTLY


def deal_steps(cell: Cell, n: int, now: datetime, reps: dict[str, SeedUser], tenant: str) -> list[Step]:
    """One past deal: created, moved to the cell's stage, the cell's cards used (and rated), closed."""
    deal_id = f"demo-past-{cell.key}-{n:02d}"
    owner = REPS[n % len(REPS)]
    path = STAGES[: STAGES.index(cell.stage) + 1]
    start = now - timedelta(days=360 - 5 * n + (n % 3))  # 7 to 12 months ago: every rep a veteran
    won = n in cell.won

    def context(stage: str, status: int = deal_pb2.DEAL_STATUS_OPEN) -> ev.DealContext:
        return ev.DealContext(
            deal_id=deal_id,
            industry=cell.industry,
            owner_user_id=owner,
            stage_id=stage,
            status=status,  # type: ignore[arg-type]
        )

    steps = [Step(deal_id, start, project(ev.DealCreated(deal=context(path[0]))))]
    t = start
    for before, after in itertools.pairwise(path):
        t += timedelta(days=2)
        moved = ev.DealStageChanged(deal=context(after), from_stage_id=before, to_stage_id=after)
        steps.append(Step(deal_id, t, project(moved)))
    t += timedelta(days=1)
    who = principal(reps[owner], tenant)
    for card_id, on in cell.cards:
        if n in on:
            use = u.CardUse(
                use_id=f"{deal_id}-{card_id}", deal_id=deal_id, industry=cell.industry, stage_id=cell.stage
            )
            steps.append(Step(deal_id, t, used(who, card_id, use, feedback_for(cell, n, won))))
    t += timedelta(days=3)
    closed: Any = (
        ev.DealWon(deal=context(cell.stage, STATUS[True]), from_stage_id=cell.stage)
        if won
        else ev.DealLost(deal=context(cell.stage, STATUS[False]), lost_at_stage_id=cell.stage)
    )
    steps.append(Step(deal_id, t, project(closed)))
    return steps


@dataclass(frozen=True)
class Step:
    deal_id: str
    at: datetime
    work: Callable[[datetime], Callable[[UnitOfWork], Awaitable[object]]]


def project(evt: Any) -> Callable[[datetime], Callable[[UnitOfWork], Awaitable[object]]]:
    return lambda at: lambda uow: deal_outcomes.apply_deal_event(uow, evt, at)


def used(
    who: Principal, card_id: str, use: u.CardUse, feedback: u.CardFeedback
) -> Callable[[datetime], Callable[[UnitOfWork], Awaitable[object]]]:
    def at(when: datetime) -> Callable[[UnitOfWork], Awaitable[object]]:
        async def work(uow: UnitOfWork) -> object:
            stamped = u.CardUse()
            stamped.CopyFrom(use)
            stamped.use_time.FromDatetime(when)
            await uses.record_use(uow, who, card_id, stamped, when)
            rated = u.CardFeedback()
            rated.CopyFrom(feedback)
            rated.submit_time.FromDatetime(when + timedelta(hours=20))
            return await uses.submit_feedback(uow, who, use.use_id, rated, when + timedelta(hours=20))

        return work

    return at


async def _run(tx: Transactions, tenant: str, step: Step, attempts: int = 20) -> None:
    """One step; the running service writes too (relay, consumers): a busy SQLite is waited out."""
    for attempt in range(attempts):
        try:
            await tx.run(tenant, step.work(step.at))
            return
        except (OperationalError, Unavailable) as exc:
            busy = "locked" in str(exc) or getattr(exc, "reason", "") == "DATABASE_BUSY"
            if not busy or attempt == attempts - 1:
                raise
            await asyncio.sleep(min(0.5 * (attempt + 1), 5.0))


async def seed_history(db: Database, tenant: str, users: list[SeedUser], now: datetime) -> int:
    """The past deals of CELLS with their uses and feedback; returns the deals written."""
    reps = {user.user_id: user for user in users}
    if not all(r in reps for r in REPS):
        return 0
    tx = transactions(db)
    written = 0
    for cell in CELLS:
        for n in range(cell.deals):
            steps = deal_steps(cell, n, now, reps, tenant)
            async with tx.read(tenant) as uow:
                if await Deals(uow).get(steps[0].deal_id) is not None:
                    continue  # an earlier run wrote it
            for step in steps:
                await _run(tx, tenant, step)
            written += 1
    return written


async def demo_history(clients: SeedClients) -> None:
    """`make run`: the history in the knowledge service's own database (the settings it reads)."""
    url = make_url(Settings.from_env("knowledge").database_url)
    exists = bool(url.database) and await asyncio.to_thread(Path(url.database or ".").exists)
    if url.get_backend_name() == "sqlite" and not exists:
        log.warning("knowledge database %s not found: demo history skipped", url.database)
        return
    db = Database(url.render_as_string(hide_password=False))
    now = datetime.now(UTC)
    try:
        written = await seed_history(db, clients.tenant, list(clients.users), now)
        log.info("knowledge demo history: %d past deals with uses, feedback and outcomes", written)
    finally:
        await db.dispose()
