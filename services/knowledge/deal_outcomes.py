"""Pipeline's deal events -> knowledge's deal projection, stages reached, and the lift cells they touch.

Each event carries the deal as it stood after the change (DealContext): industry,
stage, owner, status. The projection keeps the latest state by event time (an
older, redelivered or reordered event cannot roll it back) and the union of every
stage the deal was seen in. When a change can move a win rate (the deal closed,
reopened, changed industry, or a closed deal gained a stage) every (industry, stage)
cell of the deal before and after is recounted in the same transaction. Uses recorded
on a deal after it closed do not count (a use after the outcome cannot have caused it).
Never commits: the consumer's transaction holds the processed-event row too.
"""

from __future__ import annotations

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


async def apply_deal_event(uow: UnitOfWork, evt: Any, at: datetime) -> DealOutcomeRow:
    """Project one deal event (any of EVENTS) at its occurrence time `at`."""
    deal: ev.DealContext = evt.deal
    deals = Deals(uow)
    row = await deals.get(deal.deal_id)
    before: tuple[int, str] | None = None
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
            )
        )
    else:
        before = (row.outcome, row.industry)
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
    was_closed = before is not None and before[0] != OPEN
    moved = before is None or before != (row.outcome, row.industry)
    if (row.outcome != OPEN or was_closed) and (moved or new_stages):
        industries = {row.industry} | ({before[1]} if before is not None and was_closed else set())
        cells = LiftCells(uow)
        for industry in sorted(i for i in industries if i):
            for stage in sorted(known | new_stages):
                await cells.refresh(industry, stage, at)
    return row


async def rebuild_lift(uow: UnitOfWork, at: datetime) -> int:
    """Recount every cell with a closed deal (after a bulk load, or to pick up late uses)."""
    cells = LiftCells(uow)
    done = 0
    for industry, stage in await cells.cells():
        await cells.refresh(industry, stage, at)
        done += 1
    return done
