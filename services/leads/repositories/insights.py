"""Manager-view queries: lead figures aggregated in SQL (never every lead in memory), the attention
board and dormant leads as keyset pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, String, and_, case, false, func, literal, or_, select
from sqlalchemy.sql.expression import cast

from kit.auth import Principal
from kit.resources import Page, PageRequest, Repository, Sort
from services.leads.domain import sla, status
from services.leads.repositories.leads import LeadSearch
from services.leads.store import LeadRow


@dataclass
class Figures:
    """The counts and response times of one group of leads (or of all of them)."""

    key: str = ""
    created: int = 0
    assigned: int = 0
    responded: int = 0
    converted: int = 0
    disqualified: int = 0
    recycled: int = 0
    sla_applicable: int = 0
    sla_met: int = 0
    mean_response_seconds: float | None = None
    p90_response_seconds: float | None = None


def _one(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


# Attention reasons (AttentionReason names) as SQL conditions: a lead is on the board for each that holds.
REASONS: dict[str, ColumnElement[bool]] = {
    "NO_FOLLOW_UP": and_(LeadRow.needs_attention.is_(True), LeadRow.owner_user_id.is_not(None)),
    "SLA_BREACHED": LeadRow.sla_state == sla.BREACHED,
    "UNROUTED": and_(LeadRow.pool_entry_reason == "UNROUTED", LeadRow.status == status.IN_POOL),
    "DUPLICATE_REVIEW": LeadRow.duplicate_review_needed.is_(True),
}


# Metrics dimensions (MetricsDimension names) -> the column grouped by.
DIMENSIONS: dict[str, Any] = {
    "CHANNEL": LeadRow.channel,
    "SOURCE_CODE": LeadRow.source_code,
    "GRADE": LeadRow.grade,
    "REP": LeadRow.owner_user_id,
    "TEAM": LeadRow.team_path,
    "REGION": LeadRow.region,
    # date() is a string on SQLite and a date on PostgreSQL: cast so both give "YYYY-MM-DD".
    "CREATE_DAY": cast(func.date(LeadRow.created_at), String),
}


class InsightRepository(Repository[LeadRow]):
    model = LeadRow
    resource = "lead"
    key = ("lead_id",)

    async def figures(self, who: Principal, scope: LeadSearch, dimension: str = "") -> list[Figures]:
        """One row of figures per value of `dimension` (a DIMENSIONS name), or the totals ("")."""
        where = scope.clauses(who)
        group = DIMENSIONS.get(dimension)
        key = func.coalesce(group, "") if group is not None else literal("")
        responded = LeadRow.sla_response_time.is_not(None)
        seconds = case((responded, LeadRow.sla_business_seconds), else_=None)
        stmt = select(
            key.label("k"),
            func.count().label("created"),
            _one(
                or_(
                    LeadRow.assign_time.is_not(None),
                    LeadRow.owner_user_id.is_not(None),
                    LeadRow.status.in_((status.CONVERTED, status.DISQUALIFIED, status.WORKING)),
                )
            ).label("assigned"),
            _one(responded).label("responded"),
            _one(LeadRow.status == status.CONVERTED).label("converted"),
            _one(LeadRow.status == status.DISQUALIFIED).label("disqualified"),
            _one(LeadRow.pool_entry_reason == "RECYCLED").label("recycled"),
            _one(
                or_(
                    LeadRow.sla_state.in_((sla.MET, sla.RESPONDED_LATE, sla.BREACHED)),
                    LeadRow.sla_breach_time.is_not(None),
                )
            ).label("applicable"),
            _one(and_(LeadRow.sla_state == sla.MET, LeadRow.sla_breach_time.is_(None))).label("met"),
            func.avg(seconds).label("mean"),
        ).where(*where)
        if group is not None:
            stmt = stmt.group_by(key)
        out = {
            r.k: Figures(
                r.k,
                int(r.created),
                int(r.assigned),
                int(r.responded),
                int(r.converted),
                int(r.disqualified),
                int(r.recycled),
                int(r.applicable),
                int(r.met),
                float(r.mean) if r.mean is not None else None,
            )
            for r in await self.session.execute(stmt)
            if r.created
        }
        for k, p90 in (await self._p90(where, key, group is not None)).items():
            if k in out:
                out[k].p90_response_seconds = p90
        return list(out.values())

    async def _p90(self, where: list[ColumnElement[bool]], key: Any, grouped: bool) -> dict[str, float]:
        """The 90th percentile response time per group: the value at index floor(0.9 n) of the sorted times."""
        secs = LeadRow.sla_business_seconds
        part: dict[str, Any] = {"partition_by": key} if grouped else {}
        ranked = (
            select(
                key.label("k"),
                secs.label("s"),
                func.row_number().over(order_by=secs, **part).label("rn"),
                func.count().over(**part).label("n"),
            )
            .where(*where, LeadRow.sla_response_time.is_not(None), secs.is_not(None))
            .subquery()
        )
        pick = select(ranked.c.k, ranked.c.s).where(ranked.c.rn == cast(ranked.c.n * 9, Integer) // 10 + 1)
        return {str(k): float(s) for k, s in (await self.session.execute(pick)).all()}

    async def attention(
        self, who: Principal, scope: LeadSearch, reasons: list[str], page: PageRequest, query: str
    ) -> Page[LeadRow]:
        """Leads for which one of `reasons` holds, longest-idle first."""
        known = [REASONS[r] for r in reasons if r in REASONS]
        held = or_(*known) if known else false()
        where = [*scope.clauses(who), held]
        return await self.list(where, [Sort(LeadRow.attention_since)], page, query, count=True)

    async def dormant(
        self,
        who: Principal,
        scope: LeadSearch,
        *,
        grades: list[str],
        min_score: int,
        idle_since: datetime,
        page: PageRequest,
        query: str,
    ) -> Page[LeadRow]:
        """Leads of `scope` of high intent (a grade, or a score) untouched since `idle_since`; highest score first."""
        intent: Any = LeadRow.grade.in_(grades)
        if min_score:
            intent = or_(intent, LeadRow.score >= min_score)
        where = [
            *scope.clauses(who),
            intent,
            or_(LeadRow.last_activity_time.is_(None), LeadRow.last_activity_time < idle_since),
            LeadRow.created_at < idle_since,
        ]
        return await self.list(where, [Sort(LeadRow.score, descending=True)], page, query)
