"""Tenant scoping of kit.db on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import String, delete, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.db import Database, TenantScoped, TenantScopeError


class Base(DeclarativeBase):
    pass


class Thing(TenantScoped, Base):
    __tablename__ = "thing"
    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


@pytest.fixture
async def db(database_url: str):  # type: ignore[no-untyped-def]
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with database.session("t1") as s:
        s.add_all([Thing(id="a1", name="x"), Thing(id="a2", name="y")])
        await s.commit()
    async with database.session("t2") as s:
        s.add(Thing(id="b1", name="x"))
        await s.commit()
    yield database
    await database.dispose()


async def test_select_sees_own_tenant_only(db: Database) -> None:
    async with db.session("t2") as s:
        rows = (await s.execute(select(Thing))).scalars().all()
        assert [r.id for r in rows] == ["b1"]
        assert await s.get(Thing, "a1") is None


async def test_get_by_primary_key_of_other_tenant_is_none(db: Database) -> None:
    async with db.session("t2") as s:
        assert (await s.execute(select(Thing).where(Thing.id == "a1"))).scalar_one_or_none() is None


async def test_update_and_delete_are_scoped(db: Database) -> None:
    async with db.session("t2") as s:
        assert (await s.execute(update(Thing).values(name="z"))).rowcount == 1  # type: ignore[attr-defined]
        assert (await s.execute(delete(Thing).where(Thing.name == "x"))).rowcount == 0  # type: ignore[attr-defined]
        await s.commit()
    async with db.system_session() as s:
        names = {(r.tenant_id, r.id): r.name for r in (await s.execute(select(Thing))).scalars()}
    assert names == {("t1", "a1"): "x", ("t1", "a2"): "y", ("t2", "b1"): "z"}


async def test_new_rows_are_stamped_and_cross_tenant_writes_refused(db: Database) -> None:
    async with db.session("t1") as s:
        s.add(Thing(id="a3", name="n"))
        await s.commit()
        row = (await s.execute(select(Thing).where(Thing.id == "a3"))).scalar_one()
        assert row.tenant_id == "t1"
    async with db.session("t1") as s:
        s.add(Thing(id="a4", name="n", tenant_id="t2"))
        with pytest.raises(TenantScopeError):
            await s.flush()


async def test_session_without_tenant_refuses_scoped_tables(db: Database) -> None:
    with pytest.raises(TenantScopeError):
        async with db.session(""):
            pass
    async with db._factory() as s:
        with pytest.raises(TenantScopeError):
            await s.execute(select(Thing))
