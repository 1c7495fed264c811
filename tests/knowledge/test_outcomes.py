"""Pipeline's deal events -> the deal projection and lift cells, through the real consumer path, on
SQLite and PostgreSQL: idempotent, order-safe, uses after the close not counted, reopen recounts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from kit.db import Database
from kit.migrations import upgrade_to_head
from salesops.pipeline.v1 import events_pb2 as ev
from services.knowledge import deal_outcomes
from services.knowledge.consumers import on_session
from services.knowledge.domain.lift import CellCounts
from services.knowledge.repositories.outcomes import Deals, LiftCells
from services.knowledge.store_outcomes import LOST, OPEN, WON
from tests.knowledge.outcome_world import T0, add_use, consumer, context, deal_life, envelope

NEGOTIATION = "negotiation"
PATH = ["initial_contact", "needs_confirmed", NEGOTIATION]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade_to_head("knowledge", database)
    yield database
    await database.dispose()


async def counts(db: Database, stage: str, cards: list[str], tenant: str = "demo") -> dict[str, CellCounts]:
    async with db.session(tenant, read_only=True) as session:
        uow = on_session(session, tenant)
        return await LiftCells(uow).counts("manufacturing", stage, cards)


async def test_projection_and_cells_from_deal_events(db: Database) -> None:
    c = consumer(db)
    # d1 won and d2 lost in negotiation, d3 lost earlier (never reached negotiation), d4 still open.
    await add_use(db, "u1", "card-a", "d1", T0 + timedelta(hours=30))
    await add_use(db, "u2", "card-a", "d2", T0 + timedelta(hours=30))
    await add_use(db, "u2b", "card-a", "d2", T0 + timedelta(hours=31))  # a second use: one deal
    await add_use(db, "u3", "card-b", "d1", T0 + timedelta(hours=30))
    for deal_id, path, outcome in (
        ("d1", PATH, "won"),
        ("d2", PATH, "lost"),
        ("d3", PATH[:2], "lost"),
        ("d4", PATH, "open"),
    ):
        await deal_life(c, deal_id, path, outcome)
    got = await counts(db, NEGOTIATION, ["card-a", "card-b", "card-c"])
    assert got == {
        "card-a": CellCounts(2, 1, 2, 1),
        "card-b": CellCounts(2, 1, 1, 1),
        "card-c": CellCounts(2, 1, 0, 0),
    }
    assert (await counts(db, "needs_confirmed", ["card-a"]))["card-a"] == CellCounts(3, 1, 2, 1)
    async with db.session("demo", read_only=True) as session:
        uow = on_session(session, "demo")
        d1, d4 = await Deals(uow).get("d1"), await Deals(uow).get("d4")
        assert d1 is not None and d4 is not None
        assert (d1.industry, d1.stage_id, d1.owner_user_id, d1.outcome) == (
            "manufacturing",
            NEGOTIATION,
            "rep-a1",
            WON,
        )
        assert d1.closed_at is not None and d4.outcome == OPEN and d4.closed_at is None
        assert await Deals(uow).stages_reached("d3") == set(PATH[:2])


async def test_redelivery_is_applied_once_and_an_older_event_does_not_roll_back(db: Database) -> None:
    c = consumer(db)
    closed_at = await deal_life(c, "d1", PATH, "won")
    won = envelope(
        "DealWon", ev.DealWon(deal=context("d1", NEGOTIATION, "won"), from_stage_id=NEGOTIATION), closed_at
    )
    assert await c._apply(won) is True  # a new event id: applied, changes nothing
    assert await c._apply(won) is False  # the same event again: skipped by processed_events
    stale = ev.DealStageChanged(
        deal=context("d1", "needs_confirmed"), from_stage_id="initial_contact", to_stage_id="needs_confirmed"
    )
    await c._apply(envelope("DealStageChanged", stale, T0 + timedelta(hours=1)))
    async with db.session("demo", read_only=True) as session:
        uow = on_session(session, "demo")
        row = await Deals(uow).get("d1")
        assert row is not None and (row.outcome, row.stage_id) == (WON, NEGOTIATION)
    assert (await counts(db, NEGOTIATION, ["x"]))["x"] == CellCounts(1, 1, 0, 0)


async def test_reopen_recounts_and_a_use_after_the_close_does_not_count(db: Database) -> None:
    c = consumer(db)
    closed_at = await deal_life(c, "d1", PATH, "lost")
    await deal_life(c, "d2", PATH, "won")
    await add_use(db, "late", "card-a", "d1", closed_at + timedelta(hours=1))
    await deal_life(c, "d3", PATH, "won")
    assert (await counts(db, NEGOTIATION, ["card-a"]))["card-a"] == CellCounts(3, 2, 0, 0)
    reopened = ev.DealReopened(deal=context("d1", NEGOTIATION, "open"))
    await c._apply(envelope("DealReopened", reopened, closed_at + timedelta(days=2)))
    assert (await counts(db, NEGOTIATION, ["card-a"]))["card-a"] == CellCounts(2, 2, 0, 0)
    async with db.session("demo", read_only=True) as session:
        uow = on_session(session, "demo")
        row = await Deals(uow).get("d1")
        assert row is not None and row.outcome == OPEN and row.closed_at is None
    lost = ev.DealLost(deal=context("d1", NEGOTIATION, "lost"), lost_at_stage_id=NEGOTIATION)
    await c._apply(envelope("DealLost", lost, closed_at + timedelta(days=3)))
    # Closed again after the late use: now it counts.
    assert (await counts(db, NEGOTIATION, ["card-a"]))["card-a"] == CellCounts(3, 2, 1, 0)
    async with db.session("demo") as session:
        uow = on_session(session, "demo")
        assert await deal_outcomes.rebuild_lift(uow, closed_at) == 3
        await session.commit()
    assert (await counts(db, NEGOTIATION, ["card-a"]))["card-a"] == CellCounts(3, 2, 1, 0)
    assert LOST != WON


async def test_tenants_are_apart(db: Database) -> None:
    c = consumer(db)
    await add_use(db, "u1", "card-a", "d1", T0 + timedelta(hours=30), tenant="acme")
    await deal_life(c, "d1", PATH, "won", tenant="acme")
    assert (await counts(db, NEGOTIATION, ["card-a"]))["card-a"] == CellCounts(0, 0, 0, 0)
    assert (await counts(db, NEGOTIATION, ["card-a"], "acme"))["card-a"] == CellCounts(1, 1, 1, 1)
