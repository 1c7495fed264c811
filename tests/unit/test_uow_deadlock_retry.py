"""Transactions.run re-runs a unit of work PostgreSQL rolled back to break a deadlock."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, text, update

from kit.db import Database
from kit.resources import Transactions, UnitOfWork
from kit.resources.uow import CONFLICT_ATTEMPTS

pytestmark = pytest.mark.postgres

metadata = MetaData()
rows = Table("counters", metadata, Column("name", String(8), primary_key=True), Column("n", Integer))
outbox = Table("outbox", MetaData(), Column("id", Integer, primary_key=True))


async def test_both_sides_of_a_deadlock_finish(postgres_url: str) -> None:
    db = Database(postgres_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(rows.insert(), [{"name": "a", "n": 0}, {"name": "b", "n": 0}])
    tx = Transactions(db, source="test", outbox=outbox)
    both_hold_one = asyncio.Barrier(2)
    runs: list[str] = []

    def locking(first: str, second: str):  # type: ignore[no-untyped-def]
        async def work(uow: UnitOfWork) -> None:
            runs.append(first)
            await uow.session.execute(update(rows).where(rows.c.name == first).values(n=rows.c.n + 1))
            if len(runs) <= 2:  # the first attempts wait for each other: a lock cycle for sure
                await asyncio.wait_for(both_hold_one.wait(), 30)
            await uow.session.execute(update(rows).where(rows.c.name == second).values(n=rows.c.n + 1))

        return work

    await asyncio.gather(tx.run("t", locking("a", "b")), tx.run("t", locking("b", "a")))
    assert 3 <= len(runs) <= 2 * CONFLICT_ATTEMPTS  # one side was rolled back and ran again
    async with db.engine.connect() as conn:
        counts: dict[str, int] = {
            str(k): int(v) for k, v in (await conn.execute(text("select name, n from counters"))).all()
        }
    assert counts == {"a": 2, "b": 2}  # each unit of work applied exactly once
    await db.dispose()
