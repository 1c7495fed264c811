"""Builders for the outcome and recommendation tests: pipeline deal events through the real consumer
path (processed-event row, commit), and card uses written as rows with their usage counters (the use API is another part's)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from kit.db import Database
from kit.events import EventEnvelope
from kit.events.consumer import StreamConsumer
from kit.events.envelope import new_envelope
from salesops.pipeline.v1 import deal_pb2
from salesops.pipeline.v1 import events_pb2 as ev
from services.knowledge.consumers import DEALS_CONSUMER, deals_handler, on_session
from services.knowledge.knowledge_settings import DEFAULTS, newcomer_tenure
from services.knowledge.repositories.usage_days import UsageDays
from services.knowledge.store import processed_events
from services.knowledge.store_uses import CardUseRow

T0 = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)
STATUS = {
    "open": deal_pb2.DEAL_STATUS_OPEN,
    "won": deal_pb2.DEAL_STATUS_WON,
    "lost": deal_pb2.DEAL_STATUS_LOST,
}


def context(
    deal_id: str, stage: str, status: str = "open", industry: str = "manufacturing", owner: str = "rep-a1"
) -> ev.DealContext:
    return ev.DealContext(
        deal_id=deal_id, industry=industry, owner_user_id=owner, stage_id=stage, status=STATUS[status]
    )


def envelope(kind: str, msg: Any, at: datetime, tenant: str = "demo") -> EventEnvelope:
    return new_envelope(
        f"pipeline.{kind}", tenant, msg, source="pipeline", subject=msg.deal.deal_id, occurred_at=at
    )


def consumer(db: Database) -> StreamConsumer:
    handler = deals_handler(None)  # type: ignore[arg-type]
    return StreamConsumer(Redis(), db, DEALS_CONSUMER.group, ["-"], handler, processed_table=processed_events)


async def deal_life(
    c: StreamConsumer,
    deal_id: str,
    path: list[str],
    outcome: str,
    at: datetime = T0,
    industry: str = "manufacturing",
    owner: str = "rep-a1",
    tenant: str = "demo",
) -> datetime:
    """Created in path[0], moved through the rest, then won / lost / left open; returns the close time."""
    t = at
    await c._apply(
        envelope(
            "DealCreated",
            ev.DealCreated(deal=context(deal_id, path[0], industry=industry, owner=owner)),
            t,
            tenant,
        )
    )
    for before, after in itertools.pairwise(path):
        t += timedelta(days=1)
        moved = ev.DealStageChanged(
            deal=context(deal_id, after, industry=industry, owner=owner),
            from_stage_id=before,
            to_stage_id=after,
        )
        await c._apply(envelope("DealStageChanged", moved, t, tenant))
    t += timedelta(days=1)
    if outcome == "won":
        won = ev.DealWon(deal=context(deal_id, path[-1], "won", industry, owner), from_stage_id=path[-1])
        await c._apply(envelope("DealWon", won, t, tenant))
    elif outcome == "lost":
        lost = ev.DealLost(
            deal=context(deal_id, path[-1], "lost", industry, owner), lost_at_stage_id=path[-1]
        )
        await c._apply(envelope("DealLost", lost, t, tenant))
    return t


async def add_use(
    db: Database,
    use_id: str,
    card_id: str,
    deal_id: str,
    at: datetime,
    user: str = "rep-a1",
    tenant: str = "demo",
    stage: str = "negotiation",
) -> None:
    async with db.session(tenant) as session:
        session.add(
            CardUseRow(
                use_id=use_id,
                card_id=card_id,
                card_version=1,
                user_id=user,
                org_path="east/team-a",
                deal_id=deal_id,
                lead_id="",
                customer_id="",
                industry="manufacturing",
                stage_id=stage,
                recommendation_id="",
                used_at=at,
                recorded_at=at,
                duty_id=use_id,
                request_digest="",
            )
        )
        await UsageDays(on_session(session, tenant)).count_use(card_id, user, at, newcomer_tenure(DEFAULTS))
        await session.commit()
