"""Queries over intakes (the replay key and the record of every merged intake) and duplicate candidates."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Table, insert, inspect, select, update
from sqlalchemy.orm.instrumentation import manager_of_class

from kit.db import TenantScopeError
from kit.resources import Repository, UnitOfWork
from services.leads.repositories import rep_loads
from services.leads.store import DecisionRow, DuplicateRow, IntakeRow, LeadRow

OPEN, DISMISSED, MERGED = "OPEN", "DISMISSED", "MERGED"
T = TypeVar("T")


class IntakeRepository(Repository[IntakeRow]):
    model = IntakeRow
    resource = "intake"
    key = ("intake_id",)

    async def merged_into(self, lead_id: str, limit: int = 20) -> list[IntakeRow]:
        """The latest intakes merged into the lead, newest first."""
        stmt = (
            select(IntakeRow)
            .where(IntakeRow.lead_id == lead_id, IntakeRow.outcome == MERGED)
            .order_by(IntakeRow.receive_time.desc())
            .limit(limit)
        )
        return list(await self.session.scalars(stmt))


class DuplicateRepository(Repository[DuplicateRow]):
    model = DuplicateRow
    resource = "duplicate candidate"
    key = ("lead_id", "other_lead_id", "kind")

    async def of_lead(self, lead_id: str) -> list[DuplicateRow]:
        return list(await self.session.scalars(select(DuplicateRow).where(DuplicateRow.lead_id == lead_id)))

    async def any_open(self, lead_id: str) -> bool:
        found = await self.session.scalar(
            select(DuplicateRow.lead_id)
            .where(DuplicateRow.lead_id == lead_id, DuplicateRow.state == OPEN)
            .limit(1)
        )
        return found is not None

    async def dismiss(self, lead_id: str, candidates: list[str]) -> None:
        stmt = update(DuplicateRow).where(DuplicateRow.lead_id == lead_id, DuplicateRow.state == OPEN)
        if candidates:
            stmt = stmt.where(DuplicateRow.other_lead_id.in_(candidates))
        await self.session.execute(stmt.values(state=DISMISSED).execution_options(synchronize_session=False))

    async def close_between(self, a: str, b: str) -> None:
        """Two leads merged: the candidates pairing them are settled."""
        await self.session.execute(
            update(DuplicateRow)
            .where(DuplicateRow.lead_id.in_([a, b]), DuplicateRow.other_lead_id.in_([a, b]))
            .values(state=MERGED)
            .execution_options(synchronize_session=False)
        )


# Rows an intake batch only ever inserts, in the order they go in (the others name a lead).
INSERT_ONLY: tuple[type[Any], ...] = (LeadRow, IntakeRow, DuplicateRow, DecisionRow)
_Columns = list[tuple[str, str, Any]]  # attribute, column, the column's Python default (or None)
_COLUMNS: dict[type[Any], _Columns] = {}


def _columns(cls: type[Any]) -> _Columns:
    cols = _COLUMNS.get(cls)
    if cols is None:
        table = cls.__table__
        cols = []
        for attr in inspect(cls).column_attrs:
            col = attr.columns[0]
            if isinstance(col.table, Table) and col.table is table:  # not a column_property
                default = col.default
                made: Any = None
                if default is not None and default.is_scalar:
                    made = default.arg  # type: ignore[attr-defined]
                elif default is not None and default.is_callable:
                    made = default.arg  # type: ignore[attr-defined]  # a callable taking a context
                cols.append((attr.key, col.key, made))
        _COLUMNS[cls] = cols
    return cols


_NAMES: dict[type[Any], frozenset[str]] = {}


def _names(cls: type[Any]) -> frozenset[str]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = frozenset(attr for attr, _, _ in _columns(cls))
    return names


def _default(made: Any) -> Any:
    return made(None) if callable(made) else made


def new_row(cls: type[T], **values: Any) -> T:
    """A new (transient) row of INSERT_ONLY with every column set: `values`, else the column's
    default (as `_insert` or a flush would fill it in). Built without the instrumented constructor:
    it set ~25 attributes one by one through the ORM's events, and `_insert` another ~25 defaults
    the same way, ~60 us a grouped CreateLead's lead (a tenth of its intake's CPU). Later changes
    (routing's owner, pool) go through the instrumentation as usual; a flush or `_insert` reads the
    values from the instance's dict either way."""
    names = _names(cls)
    if not values.keys() <= names:  # what cls(**values) would refuse
        raise TypeError(f"{cls.__name__} has no attribute(s) {sorted(values.keys() - names)}")
    obj: T = manager_of_class(cls).new_instance()
    state = obj.__dict__
    for attr, _, made in _columns(cls):
        state[attr] = values[attr] if attr in values else _default(made)
    return obj


_PENDING = "leads.insert_pending"  # session.info: the batch's rows kept out of the session


def pending_adder(uow: UnitOfWork) -> Callable[[Any], None]:
    """How an intake adds a row object it only inserts: kept for `batch_inserts` inside one, else
    session.add (a single intake's flush)."""
    kept: list[Any] | None = uow.session.info.get(_PENDING)
    return uow.session.add if kept is None else kept.append


def add_row(uow: UnitOfWork, cls: type[Any], **values: Any) -> None:
    """Add a row of INSERT_ONLY that nothing reads back as an object (intakes, duplicate candidates,
    decisions): inside `batch_inserts` only its values are kept, no ORM object is built (the
    instrumented constructor and session.add's cascade were about a tenth of a grouped CreateLead's
    CPU); outside, `cls(**values)` goes into the session as before."""
    kept: list[Any] | None = uow.session.info.get(_PENDING)
    if kept is None:
        uow.session.add(cls(**values))
        return
    if not values.keys() <= _names(cls):  # what cls(**values) would refuse
        raise TypeError(f"{cls.__name__} has no attribute(s) {sorted(values.keys() - _names(cls))}")
    kept.append((cls, values))


@asynccontextmanager
async def batch_inserts(uow: UnitOfWork) -> AsyncIterator[None]:
    """Inside: new leads, intakes and duplicate candidates (pending_adder) and the decisions added to
    the session are kept; at the end they go in with one Core INSERT (executemany) per table instead
    of the ORM's flush. They are never updated in the transaction after it, and the unit of work's
    bookkeeping of thousands of new objects (add, cascade, flush) was a large share of a grouped
    CreateLead's CPU. The objects are left as a flush leaves them (the tenant, the columns'
    defaults, outside the session); what the flush hooks did for them is done here: the tenant
    checked, the owners' open-lead counters (rep_loads) raised. Left by an exception: nothing."""
    session = uow.session
    kept: list[Any] = []
    session.info[_PENDING] = kept
    try:
        yield
    finally:
        session.info.pop(_PENDING, None)
    for obj in list(session.new):  # what other modules added (decisions.record)
        if type(obj) in INSERT_ONLY:
            session.expunge(obj)
            kept.append(obj)
    await _insert(uow, kept)


async def _insert(uow: UnitOfWork, kept: list[Any]) -> None:
    session = uow.session
    pending: dict[type[Any], list[Any]] = {cls: [] for cls in INSERT_ONLY}
    for obj in kept:
        pending[obj[0] if type(obj) is tuple else type(obj)].append(obj)
    if not kept:
        return
    loads: Counter[str] = Counter()
    # Core on the session's connection: an INSERT of a table gains nothing from the ORM session's
    # execute on top of it (its tenant hook leaves inserts alone; the tenant is checked here).
    conn = await session.connection()
    for cls, objs in pending.items():
        if not objs:
            continue
        cols = _columns(cls)
        values = []
        for obj in objs:
            if type(obj) is tuple:  # add_row's values: no object to complete
                values.append(_values(uow, cls, cols, obj[1]))
                continue
            state = obj.__dict__
            if obj.tenant_id is None:
                obj.tenant_id = uow.tenant
            elif obj.tenant_id != uow.tenant:
                raise TenantScopeError(f"{cls.__name__} of another tenant written in tenant {uow.tenant!r}")
            row = {}
            for attr, col, made in cols:
                if attr not in state:
                    setattr(obj, attr, _default(made))
                row[col] = state[attr]
            values.append(row)
            if cls is LeadRow and (owner := rep_loads.open_owner(obj.owner_user_id, obj.status)):
                loads[owner] += 1
        await conn.execute(insert(cls.__table__), values)
    if loads:
        await rep_loads.add(uow, loads)


def _values(uow: UnitOfWork, cls: type[Any], cols: _Columns, given: dict[str, Any]) -> dict[str, Any]:
    """An add_row row's column values: the tenant checked or set, the columns' defaults filled in."""
    tenant = given.get("tenant_id")
    if tenant is not None and tenant != uow.tenant:
        raise TenantScopeError(f"{cls.__name__} of another tenant written in tenant {uow.tenant!r}")
    row = {}
    for attr, col, made in cols:
        if attr == "tenant_id":
            row[col] = uow.tenant
        else:
            row[col] = given[attr] if attr in given else _default(made)
    return row
