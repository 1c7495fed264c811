"""A small generic repository: get-or-NOT_FOUND, keyset lists, etag-checked writes.

    class ItemRepository(Repository[ItemRow]):
        model = ItemRow
        resource = "example.Item"      # ResourceInfo.resource_type on NOT_FOUND
        key = ("id",)                  # the id column(s) within a tenant

        async def by_owner(self, owner: str, page: PageRequest) -> Page[ItemRow]:
            return await self.list(
                [ItemRow.owner == owner], [Sort(ItemRow.created_at, descending=True)],
                page, query=query_key("by_owner", owner),
            )

The tenant comes from the unit of work's session (kit.db scopes every ORM
statement), so no method here takes one. Named query methods live on the
subclass; this base holds what every resource repeats.

Order: the given sorts, then the key ascending as the tie-breaker, so the order is
total and a page never repeats or skips a row. NULLs sort last in either direction,
on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, and_, delete, false, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.orm.attributes import set_committed_value

from kit.errors import Aborted, InvalidArgument, NotFound
from kit.resources.paging import PageRequest, query_key
from kit.resources.uow import UnitOfWork

RowT = TypeVar("RowT")
SelectT = TypeVar("SelectT", bound=Select[Any])

STALE_ETAG = "stale etag: the resource changed since it was read; read it again and retry"


@dataclass(frozen=True)
class Sort:
    """One ORDER BY term over a mapped column (its value is read back from rows for tokens)."""

    column: InstrumentedAttribute[Any]
    descending: bool = False

    @property
    def name(self) -> str:
        return str(self.column.key)

    @property
    def nullable(self) -> bool:
        return bool(getattr(self.column.expression, "nullable", True))

    def clause(self) -> ColumnElement[Any]:
        term = self.column.desc() if self.descending else self.column.asc()
        return term.nulls_last() if self.nullable else term

    def after(self, value: Any) -> ColumnElement[bool]:
        """Rows strictly after `value` in this term's order (NULLs last)."""
        if value is None:
            return false()
        beyond = self.column < value if self.descending else self.column > value
        return or_(beyond, self.column.is_(None)) if self.nullable else beyond

    def same(self, value: Any) -> ColumnElement[bool]:
        return self.column.is_(None) if value is None else self.column == value


@dataclass
class Page(Generic[RowT]):
    items: builtins.list[RowT]
    next_page_token: str = ""
    total_size: int | None = None


@dataclass(frozen=True)
class _Keyset:
    sorts: tuple[Sort, ...]
    fingerprint: str


class Repository(Generic[RowT]):
    """Base of a resource's repository; subclasses set `model`, `resource` and `key`."""

    model: ClassVar[type[Any]]
    resource: ClassVar[str]
    key: ClassVar[tuple[str, ...] | str] = ("id",)
    version: ClassVar[str] = "version"  # the integer column the etag is made of

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    @property
    def session(self) -> AsyncSession:
        """The unit of work's session (a statement reads' one is opened here, at its first use)."""
        return self.uow.session

    # --- keys -----------------------------------------------------------------

    @classmethod
    def key_names(cls) -> tuple[str, ...]:
        return (cls.key,) if isinstance(cls.key, str) else tuple(cls.key)

    def _key_match(self, ids: Sequence[Any]) -> list[ColumnElement[bool]]:
        names = self.key_names()
        if len(ids) != len(names):
            raise TypeError(f"{self.resource} is keyed by {names}, got {len(ids)} value(s)")
        return [getattr(self.model, n) == v for n, v in zip(names, ids, strict=True)]

    def _row_key(self, row: RowT) -> list[Any]:
        return [getattr(row, n) for n in self.key_names()]

    def _name(self, ids: Sequence[Any]) -> str:
        return "/".join(str(i) for i in ids)

    # --- reads ----------------------------------------------------------------

    async def find(self, *id: Any) -> RowT | None:
        row = await self.session.scalar(select(self.model).where(*self._key_match(id)))
        return row  # type: ignore[no-any-return]

    async def get(self, *id: Any) -> RowT:
        row = await self.find(*id)
        if row is None:
            raise NotFound(self.resource, self._name(id))
        return row

    def _keyset(self, order: Sequence[Sort], query: str) -> _Keyset:
        named = {s.name for s in order}
        sorts = (*order, *(Sort(getattr(self.model, n)) for n in self.key_names() if n not in named))
        shape = [(s.name, s.descending) for s in sorts]
        return _Keyset(sorts, query_key(self.resource, shape, query))

    async def list(
        self,
        where: Sequence[ColumnElement[bool]],
        order: Sequence[Sort],
        page: PageRequest,
        query: str,
        *,
        count: bool = False,
    ) -> Page[RowT]:
        """One page in the given order, the key breaking ties. `query` names the filter
        (see `query_key`) so a token cannot be replayed against another query."""
        stmt = select(self.model).where(*where)
        total = await self.count(where) if count else None
        return await self.paginate(stmt, order, page, query, total=total)

    async def paginate(
        self,
        stmt: Select[Any],
        order: Sequence[Sort],
        page: PageRequest,
        query: str,
        *,
        total: int | None = None,
    ) -> Page[RowT]:
        """`list` over any `select(model)` (joins, EXISTS filters...). Sorts must be columns
        of `model` itself: their values are read back from the last row for the token."""
        paged, keyset = self.keyset_page(stmt, order, page, query)
        rows: builtins.list[RowT] = builtins.list(await self.session.scalars(paged))
        items = rows[: page.size]
        return Page(items, self.next_token(keyset, items, more=len(rows) > page.size), total)

    async def paginate_counted(
        self,
        where: Sequence[ColumnElement[bool]],
        order: Sequence[Sort],
        page: PageRequest,
        query: str,
        *,
        cap: int,
    ) -> Page[RowT]:
        """A page of the rows matching `where` and their total, exact up to `cap` (cap + 1 says
        "more"), in one statement: the total is an uncorrelated scalar subquery (evaluated once)
        counting at most cap + 1 ids, so a page costs the same over a thousand matches as over a
        million, and a statement read (no snapshot) answers a total that agrees with its page. A
        page with no row has none to carry it: 0 without a token, else counted apart."""
        stmt = select(self.model, self.bounded_count(where, cap + 1).label("total")).where(*where)
        paged, keyset = self.keyset_page(stmt, order, page, query)
        rows = (await self.session.execute(paged)).all()
        items = [r[0] for r in rows[: page.size]]
        if rows:
            total = int(rows[0][1] or 0)
        else:
            total = 0 if not page.token else await self.count_upto(where, cap + 1)
        return Page(items, self.next_token(keyset, items, more=len(rows) > page.size), total)

    def bounded_count(self, where: Sequence[ColumnElement[bool]], limit: int) -> Any:
        """A scalar subquery: how many rows match `where`, counting no further than `limit` (the
        session's tenant criterion reaches it as every statement of the session)."""
        ids = select(*(getattr(self.model, n) for n in self.key_names())).where(*where).limit(limit)
        return select(func.count()).select_from(ids.subquery()).correlate(None).scalar_subquery()

    async def count_upto(self, where: Sequence[ColumnElement[bool]], limit: int) -> int:
        """How many rows match `where`, counting no further than `limit`."""
        return int(await self.session.scalar(select(self.bounded_count(where, limit))) or 0)

    def keyset_page(
        self, stmt: SelectT, order: Sequence[Sort], page: PageRequest, query: str
    ) -> tuple[SelectT, _Keyset]:
        """`stmt` after the page token's row, in the keyset's order, one row past the page (to
        know whether another follows); a statement selecting more than the model works too."""
        keyset = self._keyset(order, query)
        last = self.last_values(keyset, page)
        if last is not None:
            stmt = stmt.where(after(keyset.sorts, last))
        return stmt.order_by(*(s.clause() for s in keyset.sorts)).limit(page.size + 1), keyset

    def last_values(self, keyset: _Keyset, page: PageRequest) -> builtins.list[Any] | None:
        """The sort values of the row the page token ends at (None: the first page), checked to be
        a token of this tenant and query; for a statement that binds them itself."""
        if not page.token:
            return None
        last = self.uow.tokens.decode(page.token, self.uow.tenant, keyset.fingerprint)
        if len(last) != len(keyset.sorts):
            raise InvalidArgument.field("page_token", "not a page token of this request")
        return builtins.list(last)

    def next_token(self, keyset: _Keyset, items: Sequence[RowT], *, more: bool) -> str:
        """The token of the page after `items` (the last page's is empty)."""
        if not more:
            return ""
        values = [getattr(items[-1], s.name) for s in keyset.sorts]
        return self.uow.tokens.encode(self.uow.tenant, keyset.fingerprint, values)

    async def count(self, where: Sequence[ColumnElement[bool]]) -> int:
        found = await self.session.scalar(select(func.count()).select_from(self.model).where(*where))
        return int(found or 0)

    # --- writes ---------------------------------------------------------------

    async def add(self, row: RowT) -> RowT:
        """Insert now (flush), so a duplicate key surfaces inside the unit of work."""
        self.session.add(row)
        await self.session.flush()
        return row

    def check_etag(self, row: RowT, etag: str) -> None:
        if etag and etag != str(getattr(row, self.version)):
            raise Aborted(STALE_ETAG, reason="STALE_ETAG")

    async def update_if_etag(self, row: RowT, etag: str) -> RowT:
        """Write the row's pending changes and bump its version, compare-and-set.

        ABORTED when `etag` is given and is not the version read, or when a
        concurrent transaction bumped the version first.
        """
        self.check_etag(row, etag)
        old = getattr(row, self.version)
        await self.session.flush()
        column = getattr(self.model, self.version)
        result = await self.session.execute(
            update(self.model)
            .where(*self._key_match(self._row_key(row)), column == old)
            .values({self.version: old + 1})
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Aborted(STALE_ETAG, reason="STALE_ETAG")
        set_committed_value(row, self.version, old + 1)
        return row

    async def delete_if_etag(self, row: RowT, etag: str) -> None:
        self.check_etag(row, etag)
        column = getattr(self.model, self.version)
        result = await self.session.execute(
            delete(self.model)
            .where(*self._key_match(self._row_key(row)), column == getattr(row, self.version))
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Aborted(STALE_ETAG, reason="STALE_ETAG")
        self.session.expunge(row)


def after(sorts: Sequence[Sort], last: Sequence[Any]) -> ColumnElement[bool]:
    """Rows after `last` in the order `sorts`: (a > x) OR (a = x AND b > y) OR ...

    When every term is NOT NULL and runs the same direction this is the row-value
    comparison `(a, b) > (x, y)`, which PostgreSQL answers from an index on (a, b).
    """
    if len({s.descending for s in sorts}) == 1 and not any(s.nullable for s in sorts):
        columns = tuple_(*(s.column for s in sorts))
        return columns < tuple(last) if sorts[0].descending else columns > tuple(last)
    branches = []
    for i, sort in enumerate(sorts):
        equal = [s.same(v) for s, v in zip(sorts[:i], last[:i], strict=True)]
        branches.append(and_(*equal, sort.after(last[i])))
    return or_(*branches)


__all__ = [
    "STALE_ETAG",
    "Page",
    "Repository",
    "Sort",
    "after",
]
