"""kit.resources on a real database (SQLite, and PostgreSQL when configured): unit of work,
repository (get, keyset lists, etags), tenant settings."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    DateTime,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.db import NAMING_CONVENTION, Database, TenantScoped
from kit.errors import Aborted, InvalidArgument, NotFound
from kit.events import outbox_table, parse_envelope
from kit.resources import (
    Page,
    PageRequest,
    PageTokens,
    ReadOnlyError,
    Repository,
    Sort,
    TenantSettings,
    Transactions,
    UnitOfWork,
    contains,
    query_key,
    settings_tables,
)
from salesops.common.v1.types_pb2 import Money

metadata = MetaData(naming_convention=NAMING_CONVENTION)
outbox = outbox_table(metadata)
settings_tables(metadata)
T0 = datetime(2026, 12, 1, tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = metadata


class Item(TenantScoped, Base):
    __tablename__ = "items"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"), UniqueConstraint("tenant_id", "name"))

    id: Mapped[str] = mapped_column(String(26))
    name: Mapped[str] = mapped_column(String(64))
    score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)


class Items(Repository[Item]):
    model = Item
    resource = "test.Item"
    key = ("id",)


@pytest.fixture
async def tx(database_url: str) -> AsyncIterator[Transactions]:
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield Transactions(db, source="test", outbox=outbox, tokens=PageTokens(b"k" * 32))
    finally:
        await db.dispose()


def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def seed(tx: Transactions, who: str, rows: list[tuple[int | None, int]]) -> list[Item]:
    """Rows (score, minutes after T0) with ids in insertion order."""

    async def work(uow: UnitOfWork) -> list[Item]:
        items = [
            Item(id=f"{i:04d}", name=f"n{i}", score=score, at=T0 + timedelta(minutes=m))
            for i, (score, m) in enumerate(rows)
        ]
        uow.session.add_all(items)
        return items

    return await tx.run(who, work)


# --- unit of work ---------------------------------------------------------------


async def test_run_commits_state_and_events_together(tx: Transactions) -> None:
    who = tenant()

    async def work(uow: UnitOfWork) -> str:
        await Items(uow).add(Item(id="a", name="a", score=1, at=T0))
        await uow.emit("test.item.created", Money(currency="CNY"), subject="a")
        return "done"

    assert await tx.run(who, work) == "done"
    async with tx.db.system_session() as s:
        envelopes = [parse_envelope(e) for e in await s.scalars(select(outbox.c.envelope))]
    assert [(e.type, e.tenant, e.subject, e.source) for e in envelopes] == [
        ("test.item.created", who, "a", "test")
    ]
    async with tx.read(who) as uow:
        assert (await Items(uow).get("a")).name == "a"


async def test_failure_leaves_nothing_behind(tx: Transactions) -> None:
    who = tenant()

    async def work(uow: UnitOfWork) -> None:
        await Items(uow).add(Item(id="a", name="a", at=T0))
        await uow.emit("test.item.created", Money(), subject="a")
        raise NotFound("test.Thing", "x")

    with pytest.raises(NotFound):
        await tx.run(who, work)
    async with tx.db.system_session() as s:
        assert await s.scalar(select(func.count()).select_from(outbox)) == 0
        assert await s.scalar(select(func.count()).select_from(Item)) == 0


async def test_unique_race_runs_the_work_once_more(tx: Transactions) -> None:
    who = tenant()
    await seed(tx, who, [(1, 0)])  # "n0" exists: the winner of the race
    attempts: list[int] = []

    async def create_or_get(uow: UnitOfWork) -> str:
        attempts.append(1)
        repo = Items(uow)
        if len(attempts) > 1:  # the retry sees the winner's row and answers with it
            existing = await uow.session.scalar(select(Item).where(Item.name == "n0"))
            assert existing is not None
            return existing.id
        await repo.add(Item(id="late", name="n0", at=T0))  # lost the race
        return "late"

    assert await tx.run(who, create_or_get) == "0000"
    assert len(attempts) == 2


async def test_second_unique_failure_is_aborted_and_other_integrity_errors_propagate(
    tx: Transactions,
) -> None:
    who = tenant()
    await seed(tx, who, [(1, 0)])
    attempts: list[int] = []

    async def always_dup(uow: UnitOfWork) -> None:
        attempts.append(1)
        await Items(uow).add(Item(id=f"x{len(attempts)}", name="n0", at=T0))

    with pytest.raises(Aborted):
        await tx.run(who, always_dup)
    assert len(attempts) == 2

    attempts.clear()

    async def not_null(uow: UnitOfWork) -> None:
        attempts.append(1)
        await Items(uow).add(Item(id="y", name=None, at=T0))

    with pytest.raises(IntegrityError):
        await tx.run(who, not_null)
    assert len(attempts) == 1


async def test_after_commit_runs_only_after_a_commit(tx: Transactions) -> None:
    seen: list[str] = []

    async def note() -> None:
        seen.append("after")

    async def ok(uow: UnitOfWork) -> None:
        uow.after_commit(note)
        assert seen == []

    async def fails(uow: UnitOfWork) -> None:
        uow.after_commit(note)
        raise ValueError("boom")

    await tx.run(tenant(), ok)
    with pytest.raises(ValueError):
        await tx.run(tenant(), fails)
    assert seen == ["after"]


async def test_read_is_read_only(tx: Transactions) -> None:
    who = tenant()
    async with tx.read(who) as uow:
        with pytest.raises(ReadOnlyError):
            await uow.emit("test.x", Money(), subject="x")
        uow.session.add(Item(id="r", name="r", at=T0))
        await uow.session.flush()
    async with tx.read(who) as uow:
        assert await Items(uow).find("r") is None


# --- repository -----------------------------------------------------------------


async def test_get_is_tenant_scoped_and_not_found_names_the_resource(tx: Transactions) -> None:
    a, b = tenant(), tenant()
    await seed(tx, a, [(1, 0)])
    async with tx.read(b) as uow:
        assert await Items(uow).find("0000") is None
        with pytest.raises(NotFound) as caught:
            await Items(uow).get("0000")
    assert (caught.value.resource.resource_type, caught.value.resource.resource_name) == ("test.Item", "0000")


async def test_update_and_delete_check_the_etag(tx: Transactions) -> None:
    who = tenant()
    await seed(tx, who, [(1, 0)])

    async def rename(uow: UnitOfWork, etag: str) -> int:
        repo = Items(uow)
        item = await repo.get("0000")
        item.name = f"renamed-{etag}"
        await repo.update_if_etag(item, etag)
        return item.version

    assert await tx.run(who, lambda uow: rename(uow, "1")) == 2
    with pytest.raises(Aborted):
        await tx.run(who, lambda uow: rename(uow, "1"))
    assert await tx.run(who, lambda uow: rename(uow, "")) == 3  # no etag: last writer wins
    async with tx.read(who) as uow:
        assert (await Items(uow).get("0000")).name == "renamed-"

    async def remove(uow: UnitOfWork, etag: str) -> None:
        repo = Items(uow)
        await repo.delete_if_etag(await repo.get("0000"), etag)

    with pytest.raises(Aborted):
        await tx.run(who, lambda uow: remove(uow, "2"))
    await tx.run(who, lambda uow: remove(uow, "3"))
    async with tx.read(who) as uow:
        assert await Items(uow).find("0000") is None


async def test_concurrent_updates_with_the_same_etag_one_wins(tx: Transactions) -> None:
    who = tenant()
    await seed(tx, who, [(1, 0)])

    async def bump(uow: UnitOfWork) -> None:
        repo = Items(uow)
        item = await repo.get("0000")
        await asyncio.sleep(0)  # let the other request read the same version
        item.score = (item.score or 0) + 1
        await repo.update_if_etag(item, "1")

    results = await asyncio.gather(*(tx.run(who, bump) for _ in range(2)), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Aborted", "NoneType"]
    async with tx.read(who) as uow:
        item = await Items(uow).get("0000")
    assert (item.score, item.version) == (2, 2)


async def test_contains_escapes_wildcards(tx: Transactions) -> None:
    who = tenant()

    async def add(uow: UnitOfWork) -> None:
        for i, name in enumerate(["100%", "1000", "a_b", "axb", "back\\slash", "backslash", "MiXed"]):
            uow.session.add(Item(id=str(i), name=name, at=T0))

    await tx.run(who, add)

    async def names(text: str) -> list[str]:
        async with tx.read(who) as uow:
            return sorted(
                (await uow.session.scalars(select(Item.name).where(contains(Item.name, text)))).all()
            )

    assert await names("0%") == ["100%"]
    assert await names("_") == ["a_b"]
    assert await names("\\") == ["back\\slash"]
    assert await names("mixed") == ["MiXed"]


async def test_total_size_and_tenant_scoped_count(tx: Transactions) -> None:
    a = tenant()
    await seed(tx, a, [(1, 0), (2, 0), (3, 0)])
    await seed(tx, tenant(), [(1, 0)])
    async with tx.read(a) as uow:
        page = await Items(uow).list([Item.score >= 2], [Sort(Item.score)], PageRequest(1), "q", count=True)
    assert page.total_size == 2 and [i.score for i in page.items] == [2] and page.next_page_token


async def _walk(tx: Transactions, who: str, order: list[Sort], size: int, query: str) -> list[Item]:
    seen: list[Item] = []
    token = ""
    for _ in range(100):
        async with tx.read(who) as uow:
            page: Page[Item] = await Items(uow).list([], order, PageRequest(size, token), query)
        assert len(page.items) <= size
        seen.extend(page.items)
        token = page.next_page_token
        if not token:
            return seen
    raise AssertionError("paging did not end")


def _expected(items: list[Item], order: list[tuple[str, bool]]) -> list[str]:
    """The documented order: each term with NULLs last, then the id ascending."""

    def compare(a: Item, b: Item) -> int:
        for name, descending in [*order, ("id", False)]:
            x, y = getattr(a, name), getattr(b, name)
            if x == y:
                continue
            if x is None or y is None:
                return 1 if x is None else -1
            return (1 if x > y else -1) * (-1 if descending else 1)
        return 0

    return [i.id for i in sorted(items, key=functools.cmp_to_key(compare))]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(
        st.tuples(st.one_of(st.none(), st.integers(0, 3)), st.integers(0, 2)), min_size=0, max_size=18
    ),
    size=st.integers(1, 7),
    order=st.lists(
        st.tuples(st.sampled_from(["score", "at", "id"]), st.booleans()),
        min_size=1,
        max_size=3,
        unique_by=lambda term: term[0],
    ),
)
async def test_keyset_paging_returns_every_row_once_in_order(
    tx: Transactions, rows: list[tuple[int | None, int]], size: int, order: list[tuple[str, bool]]
) -> None:
    who = tenant()  # a fresh tenant per example: examples share the database
    items = await seed(tx, who, rows)
    if "id" in [name for name, _ in order]:  # the key ends the order: terms after it never matter
        order = order[: [name for name, _ in order].index("id") + 1]
    sorts = [Sort(getattr(Item, name), descending=descending) for name, descending in order]
    walked = await _walk(tx, who, sorts, size, "all")
    assert [i.id for i in walked] == _expected(items, order)


async def test_tokens_from_another_tenant_query_order_or_forged_are_invalid(tx: Transactions) -> None:
    a, b = tenant(), tenant()
    await seed(tx, a, [(1, 0), (2, 0), (3, 0)])
    await seed(tx, b, [(1, 0), (2, 0), (3, 0)])
    order = [Sort(Item.score)]
    async with tx.read(a) as uow:
        token = (await Items(uow).list([], order, PageRequest(1), "q")).next_page_token
    attempts: list[tuple[str, list[Sort], str]] = [
        (b, order, "q"),  # another tenant
        (a, order, "q2"),  # another query
        (a, [Sort(Item.score, descending=True)], "q"),  # another order
        (a, [Sort(Item.at)], "q"),
    ]
    for who, other_order, query in attempts:
        async with tx.read(who) as uow:
            with pytest.raises(InvalidArgument) as caught:
                await Items(uow).list([], other_order, PageRequest(1, token), query)
        assert caught.value.violations[0].field == "page_token"
    async with tx.read(a) as uow:
        with pytest.raises(InvalidArgument):
            await Items(uow).list([], order, PageRequest(1, token[:-2] + "AA"), "q")
        assert len((await Items(uow).list([], order, PageRequest(1, token), "q")).items) == 1
    assert query_key("x") != query_key("y")


# --- settings -------------------------------------------------------------------

MONEY = TenantSettings(Money, Money(currency="CNY", amount_minor=1))


async def test_settings_defaults_put_cas_and_history(tx: Transactions) -> None:
    a, b = tenant(), tenant()
    async with tx.read(a) as uow:
        first = await MONEY.load(uow)
    assert (first.value, first.etag) == (Money(currency="CNY", amount_minor=1), "0")

    async def put(who: str, value: Money, etag: str) -> Money:
        return await tx.run(who, lambda uow: MONEY.put(uow, value, etag, "u1"))

    await put(a, Money(currency="EUR", amount_minor=5), "0")
    await put(a, Money(currency="USD", amount_minor=6), "")
    with pytest.raises(Aborted):
        await put(a, Money(currency="JPY"), "1")
    async with tx.read(a) as uow:
        now = await MONEY.load(uow)
        history = await MONEY.history(uow)
    assert (now.value.currency, now.etag, now.updated_by) == ("USD", "2", "u1")
    assert [(h.version, h.value.currency) for h in history] == [(2, "USD"), (1, "EUR")]
    async with tx.read(b) as uow:
        assert (await MONEY.get(uow)).currency == "CNY"  # another tenant still has the defaults


async def test_settings_documents_are_separate(tx: Transactions) -> None:
    who = tenant()
    other = TenantSettings(Money, Money(currency="GBP"), document="other")
    await tx.run(who, lambda uow: MONEY.put(uow, Money(currency="EUR"), "", "u"))
    async with tx.read(who) as uow:
        assert (await other.get(uow)).currency == "GBP"
        assert (await MONEY.get(uow)).currency == "EUR"


async def test_concurrent_first_settings_writes_both_land_in_history(tx: Transactions) -> None:
    who = tenant()

    def put(value: Money) -> Callable[[UnitOfWork], Awaitable[Money]]:
        return lambda uow: MONEY.put(uow, value, "", "u")

    await asyncio.gather(*(tx.run(who, put(Money(currency=c))) for c in ("EUR", "USD")))
    async with tx.read(who) as uow:
        history = await MONEY.history(uow)
    assert sorted(h.version for h in history) == [1, 2]


async def test_paginate_any_select_of_the_model(tx: Transactions) -> None:
    who = tenant()
    await seed(tx, who, [(s, 0) for s in (1, 2, 2, 3, None, 2)])
    high = select(Item.id).where(Item.score >= 2).scalar_subquery()
    stmt = select(Item).where(Item.id.in_(high))
    seen: list[str] = []
    token = ""
    while True:
        async with tx.read(who) as uow:
            page = await Items(uow).paginate(
                stmt, [Sort(Item.score, descending=True)], PageRequest(2, token), "hi"
            )
        seen += [i.id for i in page.items]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["0003", "0001", "0002", "0005"]


async def test_concurrent_create_or_get_converges_on_one_row(tx: Transactions) -> None:
    """Real concurrency: every request checks, then inserts; losers of the race retry and find the winner."""
    who = tenant()

    async def create_or_get(uow: UnitOfWork, candidate: str) -> str:
        existing = await uow.session.scalar(select(Item).where(Item.name == "same"))
        if existing is not None:
            return existing.id
        await asyncio.sleep(0)  # widen the window between the check and the insert
        await Items(uow).add(Item(id=candidate, name="same", at=T0))
        return candidate

    def work(candidate: str) -> Callable[[UnitOfWork], Awaitable[str]]:
        return lambda uow: create_or_get(uow, candidate)

    ids = await asyncio.gather(*(tx.run(who, work(f"c{i}")) for i in range(5)))
    assert len(set(ids)) == 1
    async with tx.read(who) as uow:
        assert await Items(uow).count([Item.name == "same"]) == 1
