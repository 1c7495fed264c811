"""kit.db on SQLite and PostgreSQL: tenant scoping, and no personal data in errors or logs."""

from __future__ import annotations

import logging
import traceback

import pytest
from sqlalchemy import String, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.db import Database, TenantScoped, TenantScopeError, redact_error_detail


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


# --------------------------------------------------------------------------- personal data in errors and logs

PHONE = "+8613812345678"
EMAIL = "li.lei@example.cn"


class Contact(TenantScoped, Base):
    __tablename__ = "contact"
    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), unique=True)
    email: Mapped[str] = mapped_column(String(128))


async def test_errors_carry_no_bound_parameters_or_row_values(db: Database) -> None:
    assert db.engine.sync_engine.hide_parameters
    async with db.session("t1") as s:
        s.add(Contact(id="c1", phone=PHONE, email=EMAIL))
        await s.commit()
    with pytest.raises(IntegrityError) as caught:
        async with db.session("t1") as s:
            s.add(Contact(id="c2", phone=PHONE, email=EMAIL))
            await s.commit()
    # What logs and dead letters would show: the message and the whole traceback chain.
    shown = "".join(traceback.format_exception(caught.value))
    assert "contact" in shown.lower()
    assert PHONE not in shown and PHONE[3:] not in shown and EMAIL not in shown


def test_postgres_detail_is_redacted_from_the_error_chain() -> None:
    """asyncpg puts row values in DETAIL; SQLAlchemy copies it into its own message."""
    import asyncpg
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

    pg = asyncpg.exceptions.UniqueViolationError.new(
        {
            "C": "23505",
            "M": 'duplicate key value violates unique constraint "uq_contact_phone"',
            "D": f"Key (phone)=({PHONE}) already exists.",
            "H": "look at the phone column",
        }
    )
    adapted = AsyncAdapt_asyncpg_dbapi.IntegrityError(f"{type(pg)}: {pg}")  # type: ignore[no-untyped-call]
    adapted.__cause__ = pg
    error = IntegrityError("INSERT INTO contact ...", None, adapted, hide_parameters=True)
    error.__cause__ = adapted
    assert PHONE in "".join(traceback.format_exception(error))  # what would be logged without it
    redact_error_detail(error)
    shown = "".join(traceback.format_exception(error))
    assert PHONE not in shown
    assert "uq_contact_phone" in shown and "HINT:  look at the phone column" in shown


async def test_rows_and_driver_arguments_are_not_logged_even_at_debug(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("sqlalchemy.engine", "aiosqlite", "asyncpg"):
        caplog.set_level(logging.DEBUG, logger=name)
    async with db.session("t1") as s:
        s.add(Contact(id="c1", phone=PHONE, email=EMAIL))
        await s.commit()
    async with db.session("t1") as s:
        assert (await s.execute(select(Contact))).scalar_one().phone == PHONE
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "SELECT" in logged  # statements are still logged...
    assert PHONE not in logged and EMAIL not in logged  # ...not what they carry or return


async def test_every_orm_path_is_scoped(db: Database) -> None:
    """Refreshes, expired attributes, aliases and subqueries carry the tenant criterion (its value a
    parameter of each execution) and see the session's tenant only."""
    from sqlalchemy.orm import aliased

    async with db.session("t1") as s:
        thing = await s.get(Thing, "a1")
        assert thing is not None
        await s.refresh(thing)
        s.expire(thing, ["name"])
        assert await s.run_sync(lambda _: thing.name) == "x"  # an expired attribute, loaded again
        other = aliased(Thing)
        inner = select(other.id).where(other.name == "x").scalar_subquery()
        assert (await s.scalars(select(Thing.id).where(Thing.id.in_(select(other.id))))).all() == ["a1", "a2"]
        assert (await s.scalars(select(Thing.id).where(Thing.id == inner))).all() == ["a1"]
        # SQLAlchemy applies no loader criteria to a bulk UPDATE by primary key: refused, not unscoped.
        with pytest.raises(TenantScopeError):
            await s.execute(update(Thing), [{"id": "a2", "name": "p"}, {"id": "b1", "name": "p"}])
        await s.execute(update(Thing).where(Thing.id.in_(["a2", "b1"])).values(name="p"))
        await s.commit()
    async with db.system_session() as s:
        names = {r.id: r.name for r in (await s.execute(select(Thing))).scalars()}
    assert names == {"a1": "x", "a2": "p", "b1": "x"}  # t2's row untouched
    async with db.session("t2", read_only=True) as s:
        assert await s.get(Thing, "a1") is None
        assert (await s.execute(select(Thing.id).where(Thing.name == "x"))).scalars().all() == ["b1"]
