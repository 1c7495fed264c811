"""kit: a statement reads' unit of work (`Transactions.read(tenant, snapshot=False)`) opens its
session at its first use: a read answered without one (leads' loop reads) makes and closes none,
its `bind` is what the session would answer, and a session it did open is tenant-scoped and
closed (its connection back in the pool) when the block ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import MetaData, String, Table, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.db import Database, TenantScoped
from kit.resources import PageTokens, Transactions


class Base(DeclarativeBase):
    pass


class Item(TenantScoped, Base):
    __tablename__ = "item"
    id: Mapped[str] = mapped_column(String(26), primary_key=True)


async def _database(tmp_path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'lazy.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with db.session("t1") as session:
        session.add_all([Item(id="a"), Item(id="b")])
        await session.commit()
    async with db.session("t2") as session:
        session.add(Item(id="c"))
        await session.commit()
    return db


def _tx(db: Database) -> Transactions:
    return Transactions(db, source="test", outbox=Table("outbox", MetaData()), tokens=cast(PageTokens, None))


async def test_a_statement_read_opens_its_session_only_when_used(tmp_path: Path) -> None:
    db = await _database(tmp_path)
    made: list[Any] = []
    factory = db._statement_factory

    def counted(**kwargs: Any) -> Any:
        made.append(kwargs)
        return factory(**kwargs)

    db._statement_factory = counted  # type: ignore[assignment]
    try:
        tx = _tx(db)
        async with db.session("t1", read_only=True, snapshot=False) as session:
            want = session.get_bind()
        made.clear()
        async with tx.read("t1", snapshot=False) as uow:
            assert uow.bind is want and not uow.writable
        assert made == []  # nothing used the session: none was made
        with pytest.raises(RuntimeError):  # nor may be once the block has ended (never closed)
            uow.session  # noqa: B018
        async with tx.read("t1", snapshot=False) as uow:
            count = await uow.session.scalar(select(func.count()).select_from(Item))
            assert uow.session is uow.session and uow.bind is want
        assert count == 2 and len(made) == 1  # the tenant's rows only, one session
        assert db.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]  # closed
        async with tx.read("t2") as uow:  # a snapshot read: its session as before
            assert await uow.session.scalar(select(func.count()).select_from(Item)) == 1
        assert len(made) == 1
    finally:
        await db.dispose()
