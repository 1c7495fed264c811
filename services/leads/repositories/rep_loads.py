"""Rep load counters (rep_loads): open leads per owner, maintained on every flush that changes a
lead's owner or status (and by the claim's compare-and-set, which bypasses the ORM), read by
routing and the caps instead of a count over the leads; `recount` repairs them from the leads."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Table, delete, event, func, inspect, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kit.db import TENANT_KEY, ScopedSession
from kit.resources import UnitOfWork
from services.leads.domain import status
from services.leads.store import LeadRow, RepLoadRow

LOADS: Table = RepLoadRow.__table__  # type: ignore[assignment]
_OPEN = sorted(status.OPEN)


def open_owner(owner: Any, state: Any) -> str | None:
    return str(owner) if owner and state in status.OPEN else None


def _before(row: LeadRow) -> tuple[Any, Any]:
    """The lead's owner and status as the database has them (None, None for a new lead)."""
    ins = inspect(row)
    if ins.pending or ins.transient:
        return None, None
    values = []
    for name in ("owner_user_id", "status"):
        hist = ins.attrs[name].history
        values.append(hist.deleted[0] if hist.deleted else (hist.unchanged or [None])[0])
    return values[0], values[1]


def _upsert(session: Session, tenant: str, user_id: str, delta: int) -> Any:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(LOADS).values(tenant_id=tenant, user_id=user_id, open_leads=delta)
    return stmt.on_conflict_do_update(
        index_elements=[LOADS.c.tenant_id, LOADS.c.user_id],
        set_={"open_leads": LOADS.c.open_leads + stmt.excluded.open_leads},
    )


# One statement for any number of counters, sent as the driver's executemany: the ORM upsert per
# rep cost SQLAlchemy's statement build, cache key and compile for each (~3% of a grouped CreateLead's
# server CPU in a profile). The tenant is a parameter of every row: the session's tenant criterion
# is not applied to driver SQL. Both dialects take the same text but for the placeholders.
_UPSERT = (
    "INSERT INTO rep_loads (tenant_id, user_id, open_leads) VALUES ({}, {}, {})"
    " ON CONFLICT (tenant_id, user_id) DO UPDATE SET open_leads = rep_loads.open_leads + excluded.open_leads"
)
UPSERT_SQL = {"sqlite": _UPSERT.format("?", "?", "?"), "postgresql": _UPSERT.format("$1", "$2", "$3")}


def apply(session: Session, tenant: str, deltas: Counter[str]) -> None:
    """Add `deltas` to the owners' counters of `tenant` (upserts, in user order so two transactions
    moving leads between the same reps lock their rows in one order).

    Lock order of every ownership change: the lead, then these counters, then rep profiles
    (`RepRepository.stamp_assigned`, which runs after the flush that calls this)."""
    rows = [(tenant, user_id, deltas[user_id]) for user_id in sorted(deltas) if deltas[user_id]]
    if rows:
        conn = session.connection()
        conn.exec_driver_sql(UPSERT_SQL[conn.dialect.name], rows if len(rows) > 1 else rows[0])


@event.listens_for(ScopedSession, "before_flush")
def _count_loads(session: Session, _ctx: Any, _instances: Any) -> None:
    # Per tenant: a system session (no tenant of its own) may change leads of several.
    deltas: dict[str, Counter[str]] = {}
    for row in (*session.new, *session.dirty, *session.deleted):
        if not isinstance(row, LeadRow):
            continue
        was = open_owner(*_before(row))
        now = None if row in session.deleted else open_owner(row.owner_user_id, row.status)
        if was != now:
            tenant = str(row.tenant_id or session.info.get(TENANT_KEY) or "")
            counts = deltas.setdefault(tenant, Counter())
            if was:
                counts[was] -= 1
            if now:
                counts[now] += 1
    for tenant in sorted(deltas):
        apply(session, tenant, deltas[tenant])


async def add(uow: UnitOfWork, deltas: Counter[str]) -> None:
    """`apply` for leads written without the ORM's flush (intakes.insert_pending)."""
    await uow.session.run_sync(lambda s: apply(s, uow.tenant, deltas))


async def open_counts(uow: UnitOfWork, user_ids: list[str]) -> dict[str, int]:
    """Open leads per rep, from the counters."""
    if not user_ids:
        return {}
    rows = await uow.session.execute(
        select(RepLoadRow.user_id, RepLoadRow.open_leads).where(RepLoadRow.user_id.in_(user_ids))
    )
    return {str(u): max(0, int(n)) for u, n in rows.all()}


async def claimed(uow: UnitOfWork, user_id: str) -> int:
    """A claim's compare-and-set gave `user_id` a lead (an UPDATE the flush hook does not see).
    Their open leads now, this one included; their counter stays locked until the commit."""

    def bump(session: Session) -> int:
        stmt = _upsert(session, uow.tenant, user_id, 1).returning(LOADS.c.open_leads)
        return int(session.execute(stmt).scalar_one())

    return await uow.session.run_sync(bump)


async def recount(uow: UnitOfWork) -> None:
    """Repair: the tenant's counters recomputed from its leads (after bulk loads that bypass the ORM)."""
    await uow.session.execute(delete(LOADS).where(LOADS.c.tenant_id == uow.tenant))
    owned = (
        select(literal(uow.tenant), LeadRow.owner_user_id, func.count())
        .where(
            LeadRow.tenant_id == uow.tenant,
            LeadRow.owner_user_id.is_not(None),
            LeadRow.status.in_(_OPEN),
        )
        .group_by(LeadRow.owner_user_id)
    )
    await uow.session.execute(
        LOADS.insert().from_select([LOADS.c.tenant_id, LOADS.c.user_id, LOADS.c.open_leads], owned)
    )


async def counted(uow: UnitOfWork) -> dict[str, int]:
    """Open leads per owner counted from the leads (what the counters must equal)."""
    stmt = (
        select(LeadRow.owner_user_id, func.count())
        .where(LeadRow.owner_user_id.is_not(None), LeadRow.status.in_(_OPEN))
        .group_by(LeadRow.owner_user_id)
    )
    return {str(k): int(v) for k, v in (await uow.session.execute(stmt)).all()}


async def counters(uow: UnitOfWork) -> dict[str, int]:
    """The tenant's non-zero counters."""
    rows = await uow.session.execute(select(RepLoadRow.user_id, RepLoadRow.open_leads))
    return {str(u): int(n) for u, n in rows.all() if n}
