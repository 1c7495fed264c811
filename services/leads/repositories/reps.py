"""Queries over rep routing profiles and the figures routing and the anti-hoarding rules read."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Dialect

from kit.resources import Page, PageRequest, Repository, Sort
from services.leads.repositories import rep_loads
from services.leads.repositories.leads import in_team
from services.leads.store import ClaimRow, CooldownRow, RepLoadRow, RepRow

# One statement for a batch's writes to its reps' routing state, a row per rep: the smooth round-robin
# state (wrr_current, where the batch moved it; NULL: left) and the last-assigned stamp (NULL: left).
# A stamp never moves backwards: a batch that commits after another with an earlier time (its leads
# arrived first) leaves the later stamp, or least-recently-assigned routing would see the rep as idle
# longer; a rep whose stamp would not move and whose state did not change is not written at all.
_STAMP = (
    "UPDATE rep_profiles SET wrr_current = COALESCE({wrr}, wrr_current),"
    " last_assigned_time = CASE WHEN last_assigned_time IS NULL OR last_assigned_time < {at}"
    " THEN COALESCE({at2}, last_assigned_time) ELSE last_assigned_time END"
    " WHERE tenant_id = {tenant} AND user_id = {user}"
    " AND ({wrr2} IS NOT NULL OR last_assigned_time IS NULL OR last_assigned_time < {at3})"
)
STAMP_SQL = {
    # qmark: each placeholder its own value (wrr, at, at, tenant, user, wrr, at)
    "sqlite": _STAMP.format(wrr="?", at="?", at2="?", tenant="?", user="?", wrr2="?", at3="?"),
    # numbered: (wrr, at, tenant, user)
    "postgresql": _STAMP.format(
        wrr="$1::integer", at="$2", at2="$2", tenant="$3", user="$4", wrr2="$1::integer", at3="$2"
    ),
}


_TS_BINDS: dict[str, Callable[[Any], Any] | None] = {}


def _ts_bind(dialect: Dialect) -> Callable[[Any], Any] | None:
    """How the dialect sends last_assigned_time (SQLite: its text form; asyncpg: as is), per dialect
    name (both use their default storage formats)."""
    if dialect.name not in _TS_BINDS:
        column = RepRow.__table__.c.last_assigned_time  # type: ignore[attr-defined]
        _TS_BINDS[dialect.name] = column.type.dialect_impl(dialect).bind_processor(dialect)
    return _TS_BINDS[dialect.name]


class RepRepository(Repository[RepRow]):
    model = RepRow
    resource = "rep profile"
    key = ("user_id",)

    async def in_team(self, team: str, include_sub: bool) -> list[RepRow]:
        cond = in_team(RepRow.team_path, team) if include_sub else RepRow.team_path == team
        return list(await self.session.scalars(select(RepRow).where(cond).order_by(RepRow.user_id)))

    async def in_team_with_loads(self, team: str, include_sub: bool) -> list[tuple[RepRow, int]]:
        """in_team with each rep's open leads (open_counts) read in the same statement: a batch's
        routing reads a team once, and the second statement was as costly as the first."""
        cond = in_team(RepRow.team_path, team) if include_sub else RepRow.team_path == team
        loads = and_(RepLoadRow.tenant_id == RepRow.tenant_id, RepLoadRow.user_id == RepRow.user_id)
        stmt = (
            select(RepRow, RepLoadRow.open_leads)
            .outerjoin(RepLoadRow, loads)
            .where(cond)
            .order_by(RepRow.user_id)
        )
        return [(row, max(0, int(n or 0))) for row, n in (await self.session.execute(stmt)).all()]

    async def in_teams_with_loads(
        self, teams: list[tuple[str, bool]]
    ) -> dict[tuple[str, bool], list[tuple[RepRow, int]]]:
        """in_team_with_loads for several (team, include_sub) at once, in one statement: each
        team's reps in user order (the statement's order, filtered by the same tests as `in_team`),
        a rep in two of them the same row."""
        conds = [in_team(RepRow.team_path, t) if sub else RepRow.team_path == t for t, sub in teams]
        loads = and_(RepLoadRow.tenant_id == RepRow.tenant_id, RepLoadRow.user_id == RepRow.user_id)
        stmt = (
            select(RepRow, RepLoadRow.open_leads)
            .outerjoin(RepLoadRow, loads)
            .where(or_(*conds))
            .order_by(RepRow.user_id)
        )
        found = [(row, max(0, int(n or 0))) for row, n in (await self.session.execute(stmt)).all()]
        out: dict[tuple[str, bool], list[tuple[RepRow, int]]] = {}
        for team, sub in teams:
            below = team + "/"
            out[(team, sub)] = [
                (r, n) for r, n in found if r.team_path == team or (sub and r.team_path.startswith(below))
            ]
        return out

    async def page_in_team(self, team: str, page: PageRequest, query: str) -> Page[RepRow]:
        where = [in_team(RepRow.team_path, team)] if team else []
        return await self.list(where, [Sort(RepRow.user_id)], page, query)

    async def open_counts(self, user_ids: list[str]) -> dict[str, int]:
        """Open (owned, not closed) leads per rep: their maintained counters (rep_loads)."""
        return await rep_loads.open_counts(self.uow, user_ids)

    async def open_count(self, user_id: str) -> int:
        return (await self.open_counts([user_id])).get(user_id, 0)

    async def stamp_assigned(self, user_id: str, at: datetime) -> None:
        """Locks the rep's row: after the lead and the load counters (the order of every ownership
        change, see rep_loads.apply); the statement's autoflush writes the lead's new owner first."""
        await self.session.execute(
            update(RepRow)
            .where(
                RepRow.user_id == user_id,
                or_(RepRow.last_assigned_time.is_(None), RepRow.last_assigned_time < at),  # _STAMP's why
            )
            .values(last_assigned_time=at)
            .execution_options(synchronize_session=False)
        )

    async def stamp_many(self, stamps: Mapping[str, datetime], wrr: Mapping[str, int] | None = None) -> None:
        """stamp_assigned for a batch's reps (user -> their last assignment), and their round-robin
        state where the batch moved it (`wrr`: user -> wrr_current), in one statement: the driver's
        executemany in user order (locks taken in one order). The ORM UPDATE per lead cost its
        build, cache key and compile each time (~4% of a grouped CreateLead's server CPU), and the
        state's ORM flush a round trip per batch. The tenant is a parameter of every row: the
        session's tenant criterion is not applied to driver SQL. A batch calls it after its leads
        and counters are written (the lock order above)."""
        wrr = wrr or {}
        if not stamps and not wrr:
            return
        conn = await self.session.connection()
        dialect = conn.dialect
        process = _ts_bind(dialect)
        tenant = self.uow.tenant
        rows: list[tuple[Any, ...]] = []
        for user in sorted(stamps.keys() | wrr.keys()):
            at = stamps.get(user)
            sent = process(at) if process and at is not None else at
            state = wrr.get(user)
            if dialect.name == "sqlite":
                rows.append((state, sent, sent, tenant, user, state, sent))
            else:
                rows.append((state, sent, tenant, user))
        await conn.exec_driver_sql(STAMP_SQL[dialect.name], rows if len(rows) > 1 else rows[0])

    async def add_or_update(self, row: RepRow | None, user_id: str, values: dict[str, Any]) -> RepRow:
        if row is None:
            row = RepRow(user_id=user_id, version=1, **values)
            return await self.add(row)
        for k, v in values.items():
            setattr(row, k, v)
        row.version += 1
        await self.session.flush()
        return row


class ClaimRepository(Repository[ClaimRow]):
    model = ClaimRow
    resource = "claim"
    key = ("decision_id",)

    async def count_on(self, user_id: str, local_day: str) -> int:
        return await self.count([ClaimRow.user_id == user_id, ClaimRow.local_day == local_day])


class CooldownRepository(Repository[CooldownRow]):
    model = CooldownRow
    resource = "cooldown"
    key = ("user_id", "lead_id")

    async def until(self, user_id: str, lead_id: str) -> datetime | None:
        found = await self.session.scalar(
            select(CooldownRow.until).where(CooldownRow.user_id == user_id, CooldownRow.lead_id == lead_id)
        )
        return found  # type: ignore[no-any-return]

    async def set(self, user_id: str, lead_id: str, until: datetime) -> None:
        existing = await self.find(user_id, lead_id)
        if existing is None:
            self.session.add(CooldownRow(user_id=user_id, lead_id=lead_id, until=until))
        else:
            existing.until = until
