"""Pipeline's deal events -> knowledge's deal projection, stages reached, and the lift cells they touch.

Each event carries the deal as it stood after the change (DealContext): industry,
stage, owner, status. The projection keeps the latest state by event time (an
older, redelivered or reordered event cannot roll it back) and the union of every
stage the deal was seen in. In the same transaction the lift cache follows: what the
deal adds now (closed: +1 in each (industry, stage) cell it reached, and to each card
used on it before the close) replaces what it had added (kept on the row), so a close,
a reopen or a change of industry moves exactly that deal's counts. Uses after the close
do not count (a use after the outcome cannot have caused it).
Never commits: the consumer's transaction holds the processed-event row too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kit.resources import UnitOfWork
from salesops.pipeline.v1 import deal_pb2
from salesops.pipeline.v1 import events_pb2 as ev
from services.knowledge.repositories.outcomes import Deals, LiftCells
from services.knowledge.store_outcomes import LOST, OPEN, WON, DealOutcomeRow

EVENTS: dict[str, type[Any]] = {
    "pipeline.DealCreated": ev.DealCreated,
    "pipeline.DealUpdated": ev.DealUpdated,
    "pipeline.DealOwnerChanged": ev.DealOwnerChanged,
    "pipeline.DealStageChanged": ev.DealStageChanged,
    "pipeline.DealWon": ev.DealWon,
    "pipeline.DealLost": ev.DealLost,
    "pipeline.DealReopened": ev.DealReopened,
}
OUTCOME = {deal_pb2.DEAL_STATUS_WON: WON, deal_pb2.DEAL_STATUS_LOST: LOST}


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def stages_named(evt: Any) -> set[str]:
    """Every stage the event says the deal was in: its current one and the one it left or closed from."""
    names = {evt.deal.stage_id}
    if isinstance(evt, ev.DealStageChanged):
        names |= {evt.from_stage_id, evt.to_stage_id}
    elif isinstance(evt, ev.DealWon):
        names.add(evt.from_stage_id)
    elif isinstance(evt, ev.DealLost):
        names.add(evt.lost_at_stage_id)
    return {s for s in names if s}


@dataclass(frozen=True)
class Contribution:
    """What one closed deal adds to the lift cache: +1 closed (and won) in each (industry, stage) it
    reached, and the same to each card used on it before the close."""

    won: int
    industry: str
    stages: tuple[str, ...]
    cards: tuple[str, ...]


def counted(row: DealOutcomeRow) -> Contribution | None:
    if row.counted_won < 0:
        return None
    return Contribution(
        row.counted_won,
        row.counted_industry,
        tuple(row.counted_stages.split()),
        tuple(row.counted_cards.split()),
    )


def store_counted(row: DealOutcomeRow, c: Contribution | None) -> None:
    row.counted_won = -1 if c is None else c.won
    row.counted_industry = "" if c is None else c.industry
    row.counted_stages = "" if c is None else " ".join(c.stages)
    row.counted_cards = "" if c is None else " ".join(c.cards)


async def apply_deal_event(uow: UnitOfWork, evt: Any, at: datetime) -> DealOutcomeRow:
    """Project one deal event (any of EVENTS) at its occurrence time `at`."""
    deal: ev.DealContext = evt.deal
    deals = Deals(uow)
    row = await deals.get(deal.deal_id)
    if row is None:
        row = await deals.add(
            DealOutcomeRow(
                deal_id=deal.deal_id,
                industry=deal.industry,
                stage_id=deal.stage_id,
                owner_user_id=deal.owner_user_id,
                outcome=OPEN,
                created_at=at,
                closed_at=None,
                event_at=at,
                counted_won=-1,
                counted_industry="",
                counted_stages="",
                counted_cards="",
            )
        )
    if at >= _aware(row.event_at):
        row.industry, row.owner_user_id, row.event_at = deal.industry, deal.owner_user_id, at
        row.stage_id = deal.stage_id or row.stage_id
        outcome = OUTCOME.get(deal.status, OPEN)
        if outcome != row.outcome:
            row.outcome, row.closed_at = outcome, (at if outcome != OPEN else None)
    if isinstance(evt, ev.DealCreated):
        row.created_at = min(_aware(row.created_at), at)
    known = await deals.stages_reached(deal.deal_id)
    new_stages = stages_named(evt) - known
    if new_stages:
        await deals.add_stages(deal.deal_id, new_stages, at)
    if row.owner_user_id:
        await deals.note_owner(row.owner_user_id, _aware(row.created_at))
    await recount(uow, row, known | new_stages, at)
    return row


async def recount(uow: UnitOfWork, row: DealOutcomeRow, stages: set[str], at: datetime) -> None:
    """Bring the lift cache in step with the deal: remove what it had added, add what it adds now.
    Every event of a closed deal re-reads its uses, so a use synced late (device time before the
    close) is counted by the deal's next event."""
    cells = LiftCells(uow)
    now: Contribution | None = None
    if row.outcome != OPEN and row.closed_at is not None and row.industry:
        cards = await cells.cards_used_before(row.deal_id, _aware(row.closed_at))
        now = Contribution(int(row.outcome == WON), row.industry, tuple(sorted(stages)), tuple(sorted(cards)))
    before = counted(row)
    if now == before:
        return
    if before is not None:
        for stage in before.stages:
            await cells.bump(before.industry, stage, before.cards, -1, -before.won, at)
    if now is not None:
        for stage in now.stages:
            await cells.bump(now.industry, stage, now.cards, 1, now.won, at)
    store_counted(row, now)


async def rebuild_lift(uow: UnitOfWork, at: datetime) -> int:
    """Recount the whole lift cache from the projection and card_uses (after a bulk load, or to
    repair it); returns the number of (industry, stage) cells."""
    cells = LiftCells(uow)
    await cells.clear()
    reached, used = await cells.reached_by_closed(), await cells.cards_by_closed()
    totals: dict[tuple[str, str], tuple[int, int]] = {}
    per_card: dict[tuple[str, str, str], tuple[int, int]] = {}
    for row in await cells.closed_deals():
        if row.closed_at is None or not row.industry:
            store_counted(row, None)
            continue
        won = int(row.outcome == WON)
        stages = tuple(sorted(reached.get(row.deal_id, set())))
        cards = tuple(sorted(used.get(row.deal_id, set())))
        for stage in stages:
            n, w = totals.get((row.industry, stage), (0, 0))
            totals[(row.industry, stage)] = (n + 1, w + won)
            for card in cards:
                n, w = per_card.get((row.industry, stage, card), (0, 0))
                per_card[(row.industry, stage, card)] = (n + 1, w + won)
        store_counted(row, Contribution(won, row.industry, stages, cards))
    await uow.session.flush()
    await cells.load(totals, per_card, at)
    return len(totals)
