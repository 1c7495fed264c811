"""Manager-view queries: lead figures aggregated in SQL (never every lead in memory), the attention
board and dormant leads as keyset pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, case, func, literal, or_, select
from sqlalchemy.sql.expression import cast

from kit.resources import Page, PageRequest, Repository, Sort
from services.leads.domain import sla, status
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


# Attention reasons as SQL conditions (a lead is on the board for each that holds).
NO_FOLLOW_UP = and_(LeadRow.needs_attention.is_(True), LeadRow.owner_user_id.is_not(None))
SLA_BREACHED = LeadRow.sla_state == sla.BREACHED
UNROUTED = and_(LeadRow.pool_entry_reason == "UNROUTED", LeadRow.status == status.IN_POOL)
DUPLICATE_REVIEW = LeadRow.duplicate_review_needed.is_(True)


class InsightRepository(Repository[LeadRow]):
    model = LeadRow
    resource = "lead"
    key = ("lead_id",)

    async def figures(self, where: list[ColumnElement[bool]], group: Any | None) -> list[Figures]:
        """One row of figures per group value (`group` a LeadRow column, or None for the totals)."""
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
        self,
        where: list[ColumnElement[bool]],
        reasons: list[ColumnElement[bool]],
        page: PageRequest,
        query: str,
    ) -> Page[LeadRow]:
        """Leads for which one of `reasons` holds, longest-idle first."""
        return await self.list(
            [*where, or_(*reasons)], [Sort(LeadRow.attention_since)], page, query, count=True
        )

    async def dormant(self, where: list[ColumnElement[bool]], page: PageRequest, query: str) -> Page[LeadRow]:
        """Highest score first."""
        return await self.list(where, [Sort(LeadRow.score, descending=True)], page, query)
