"""The SQL of process health: every metric of a week summed per team in the database, and baselines.

A "team" is a deal's org path (the owner's team). `unit` None groups per team
(the weekly run); a unit path measures that unit and everything below it (a
region, or one team asked for by GetProcessHealth).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.sql import Select

from kit.resources import Page, PageRequest, Repository, Sort, UnitOfWork
from services.pipeline.repositories.deals import in_org
from services.pipeline.repositories.discipline import seconds_between, stays
from services.pipeline.store import DealChangeRow, DealRow, EvidenceRow, GateReviewRow, MemberProfileRow
from services.pipeline.store_approvals import ApprovalRow
from services.pipeline.store_discipline import AnomalyRow, HealthRunRow, HealthValueRow, LeadResponseRow

HOUR, DAY = 3600.0, 86400.0
QUOTE = "quote"  # the evidence kind whose revisions count as negotiation rounds


@dataclass(frozen=True)
class Measured:
    org_path: str
    metric: str  # ProcessMetric name without its prefix
    stage_id: str
    value: float
    sample_size: int


@dataclass(frozen=True)
class Baseline:
    periods: int
    mean: float
    mean_square: float


def _f(v: Any) -> float:
    return float(v or 0.0)


class HealthSql:
    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session
        self.tenant = uow.tenant
        self._mine = DealRow.tenant_id == uow.tenant

    async def _grouped(
        self,
        team: Any,
        aggregates: Sequence[Any],
        where: Sequence[Any],
        unit: str | None,
        extra: Sequence[Any] = (),
        from_: Any = None,
    ) -> list[tuple[Any, ...]]:
        """Rows (team, *extra, *aggregates): per team, or one row for the unit (team = unit)."""
        if unit is None:
            stmt: Select[Any] = select(team, *extra, *aggregates)
            if from_ is not None:
                stmt = stmt.select_from(from_)
            stmt = stmt.where(*where, team != "").group_by(team, *extra)
            return [tuple(r) for r in (await self.session.execute(stmt)).all()]
        scope = [in_org(team, unit)] if unit else []
        stmt = select(*extra, *aggregates)
        if from_ is not None:
            stmt = stmt.select_from(from_)
        stmt = stmt.where(*where, *scope)
        if extra:
            stmt = stmt.group_by(*extra)
        rows = (await self.session.execute(stmt)).all()
        return [(unit, *r) for r in rows if r[-1] is not None]

    async def week(
        self, unit: str | None, start: datetime, end: datetime, stage_order: Mapping[str, int]
    ) -> list[Measured]:
        """Every SQL-computed metric of [start, end) (UTC instants of the tenant's week)."""
        out: list[Measured] = []
        out += await self._responses(unit, start, end)
        out += await self._outcomes(unit, start, end)
        out += await self._stages(unit, start, end, stage_order)
        out += await self._quotes(unit, start, end)
        out += await self._frozen(unit, start, end)
        out += await self._gates(unit, start, end)
        out += await self._approvals(unit, start, end)
        return out

    async def _approvals(self, unit: str | None, start: datetime, end: datetime) -> list[Measured]:
        """Submit to decision of the approvals decided (approved or rejected) in the week, per org path."""
        a = ApprovalRow
        rows = await self._grouped(
            a.org_path,
            [func.avg(seconds_between(a.submit_time, a.complete_time)), func.count()],
            [
                a.tenant_id == self.tenant,
                a.state.in_(("APPROVED", "REJECTED")),
                a.complete_time >= start,
                a.complete_time < end,
            ],
            unit,
        )
        return [Measured(t, "APPROVAL_TURNAROUND", "", _f(avg) / HOUR, int(n)) for t, avg, n in rows if n]

    async def _responses(self, unit: str | None, start: datetime, end: datetime) -> list[Measured]:
        r = LeadResponseRow
        rows = await self._grouped(
            r.team_path,
            [func.avg(r.response_seconds), func.count()],
            [r.tenant_id == self.tenant, r.responded_at >= start, r.responded_at < end],
            unit,
        )
        return [Measured(t, "LEAD_RESPONSE_TIME", "", _f(avg) / HOUR, int(n)) for t, avg, n in rows if n]

    async def _outcomes(self, unit: str | None, start: datetime, end: datetime) -> list[Measured]:
        won = DealRow.status == "WON"
        rows = await self._grouped(
            DealRow.org_path,
            [
                func.sum(case((won, 1), else_=0)),
                func.avg(case((won, DealRow.amount_minor), else_=None)),
                func.avg(case((won, seconds_between(DealRow.created_at, DealRow.closed_at)), else_=None)),
                func.count(),
            ],
            [
                self._mine,
                DealRow.status.in_(("WON", "LOST")),
                DealRow.closed_at >= start,
                DealRow.closed_at < end,
            ],
            unit,
        )
        out: list[Measured] = []
        for team, n_won, size, cycle, n in rows:
            if not n:
                continue
            out.append(Measured(team, "WIN_RATE", "", _f(n_won) / int(n), int(n)))
            if n_won:
                out.append(Measured(team, "AVERAGE_DEAL_SIZE", "", _f(size), int(n_won)))
                out.append(Measured(team, "SALES_CYCLE_TIME", "", _f(cycle) / DAY, int(n_won)))
        return out

    async def _stages(
        self, unit: str | None, start: datetime, end: datetime, stage_order: Mapping[str, int]
    ) -> list[Measured]:
        s = stays(self.tenant)
        order_of = dict(stage_order)
        if order_of:
            forward = (s.c.exit == "WON") | (
                case(order_of, value=s.c.exit, else_=-1) > case(order_of, value=s.c.stage_id, else_=10_000)
            )
        else:
            forward = s.c.exit == "WON"
        rows = await self._grouped(
            s.c.org_path,
            [func.avg(s.c.seconds), func.sum(case((forward, 1), else_=0)), func.count()],
            [s.c.left_at >= start, s.c.left_at < end],
            unit,
            extra=[s.c.stage_id],
        )
        out: list[Measured] = []
        for team, stage, avg, n_forward, n in rows:
            if n:
                out.append(Measured(team, "STAGE_DWELL", stage, _f(avg) / DAY, int(n)))
                out.append(Measured(team, "STAGE_CONVERSION", stage, _f(n_forward) / int(n), int(n)))
        return out

    async def _quotes(self, unit: str | None, start: datetime, end: datetime) -> list[Measured]:
        e = EvidenceRow
        per_deal = (
            select(e.deal_id, func.count().label("n"), func.min(e.created_at).label("first"))
            .where(e.tenant_id == self.tenant, e.evidence_type_id == QUOTE)
            .group_by(e.deal_id)
            .subquery("quotes")
        )
        closed = and_(
            DealRow.status.in_(("WON", "LOST")), DealRow.closed_at >= start, DealRow.closed_at < end
        )
        with_quotes = DealRow.__table__.outerjoin(per_deal, per_deal.c.deal_id == DealRow.deal_id)
        rounds = await self._grouped(
            DealRow.org_path,
            [func.avg(func.coalesce(per_deal.c.n, 0)), func.count()],
            [self._mine, closed],
            unit,
            from_=with_quotes,
        )
        rounds_joined = [Measured(t, "NEGOTIATION_ROUNDS", "", _f(avg), int(n)) for t, avg, n in rounds if n]
        built = await self._grouped(
            DealRow.org_path,
            [func.avg(seconds_between(DealRow.created_at, per_deal.c.first)), func.count()],
            [self._mine, per_deal.c.first >= start, per_deal.c.first < end],
            unit,
            from_=DealRow.__table__.join(per_deal, per_deal.c.deal_id == DealRow.deal_id),
        )
        return rounds_joined + [
            Measured(t, "SOLUTION_BUILD_TIME", "", _f(avg) / DAY, int(n)) for t, avg, n in built if n
        ]

    async def _frozen(self, unit: str | None, start: datetime, end: datetime) -> list[Measured]:
        c = DealChangeRow
        froze = (
            select(c.deal_id)
            .distinct()
            .where(
                c.tenant_id == self.tenant,
                c.field == "frozen",
                c.new_value == "true",
                c.changed_at >= start,
                c.changed_at < end,
            )
            .subquery("froze")
        )
        open_in_week = and_(
            DealRow.created_at < end, (DealRow.closed_at.is_(None)) | (DealRow.closed_at >= start)
        )
        rows = await self._grouped(
            DealRow.org_path,
            [func.count(froze.c.deal_id), func.count()],
            [self._mine, open_in_week],
            unit,
            from_=DealRow.__table__.outerjoin(froze, froze.c.deal_id == DealRow.deal_id),
        )
        return [Measured(t, "FROZEN_RATIO", "", int(k) / int(n), int(n)) for t, k, n in rows if n]

    async def _gates(self, unit: str | None, start: datetime, end: datetime) -> list[Measured]:
        g = GateReviewRow
        rows = await self._grouped(
            DealRow.org_path,
            [func.sum(case((g.outcome == "REJECTED", 1), else_=0)), func.count()],
            [self._mine, g.created_at >= start, g.created_at < end],
            unit,
            from_=DealRow.__table__.join(
                g.__table__, and_(g.tenant_id == DealRow.tenant_id, g.deal_id == DealRow.deal_id)
            ),
        )
        return [Measured(t, "GATE_REJECTION_RATE", "", _f(k) / int(n), int(n)) for t, k, n in rows if n]

    async def baselines(self, org_path: str, before: date, periods: int) -> dict[tuple[str, str], Baseline]:
        """Mean and mean square of the unit's last `periods` stored weeks before `before`, per metric.

        Weeks are stored per team (the weekly run). A unit above teams (a region, the company "") has as
        its own history each week's values of the teams in it, weighted by sample size: the unit's value
        that week (every metric is a mean or a share over its sample), except FORECAST_ERROR (a WAPE,
        which does not add up over teams): that one has no band above a team rather than a made-up one.
        A team's own history is its stored rows as they are (one per week: the weight changes nothing)."""
        v = HealthValueRow
        weight = case((v.sample_size > 0, v.sample_size), else_=1)
        scope = [or_(v.metric != "FORECAST_ERROR", v.org_path == org_path)]
        if org_path:
            scope.append(in_org(v.org_path, org_path))
        weekly = (
            select(
                v.week_start,
                v.metric,
                v.stage_id,
                (func.sum(v.value * weight) / func.sum(weight)).label("value"),
            )
            .where(v.tenant_id == self.tenant, v.week_start < before, *scope)
            .group_by(v.week_start, v.metric, v.stage_id)
            .subquery("weekly")
        )
        w = weekly.c
        ranked = select(
            w.metric,
            w.stage_id,
            w.value,
            func.row_number()
            .over(partition_by=(w.metric, w.stage_id), order_by=w.week_start.desc())
            .label("rn"),
        ).subquery("recent")
        stmt = (
            select(
                ranked.c.metric,
                ranked.c.stage_id,
                func.count(),
                func.avg(ranked.c.value),
                func.avg(ranked.c.value * ranked.c.value),
            )
            .where(ranked.c.rn <= periods)
            .group_by(ranked.c.metric, ranked.c.stage_id)
        )
        rows = (await self.session.execute(stmt)).all()
        return {(m, s): Baseline(int(n), _f(mean), _f(sq)) for m, s, n, mean, sq in rows}


class HealthRecords:
    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session

    async def ran(self, week: date) -> bool:
        stmt = select(HealthRunRow.week_start).where(HealthRunRow.week_start == week)
        return await self.session.scalar(stmt) is not None

    async def save(self, values: Sequence[HealthValueRow], run: HealthRunRow) -> None:
        self.session.add_all([*values, run])
        await self.session.flush()

    async def team_manager(self, team: str) -> str:
        """The team's supervisor: the manager most of the team's active members report to ("" if none)."""
        m = MemberProfileRow
        stmt = (
            select(m.manager_user_id)
            .where(m.org_path == team, m.active.is_(True), m.manager_user_id != "")
            .group_by(m.manager_user_id)
            .order_by(func.count().desc(), m.manager_user_id)
            .limit(1)
        )
        return str(await self.session.scalar(stmt) or "")

    async def anomaly_of(self, org_path: str, week: date, metric: str, stage_id: str) -> AnomalyRow | None:
        stmt = select(AnomalyRow).where(
            AnomalyRow.org_path == org_path,
            AnomalyRow.week_start == week,
            AnomalyRow.metric == metric,
            AnomalyRow.stage_id == stage_id,
        )
        return await self.session.scalar(stmt)  # type: ignore[no-any-return]


class LeadResponses:
    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session

    async def record_first(self, row: LeadResponseRow) -> bool:
        """Keep the lead's first response only; False when one is already kept."""
        stmt = select(LeadResponseRow.lead_id).where(LeadResponseRow.lead_id == row.lead_id)
        if await self.session.scalar(stmt) is not None:
            return False
        self.session.add(row)
        await self.session.flush()
        return True


class Anomalies(Repository[AnomalyRow]):
    model = AnomalyRow
    resource = "pipeline.ProcessAnomaly"
    key = ("anomaly_id",)

    async def page(
        self, where: Sequence[ColumnElement[bool]], page: PageRequest, query: str
    ) -> Page[AnomalyRow]:
        return await self.list(where, [Sort(AnomalyRow.detected_at, descending=True)], page, query)


__all__ = ["Anomalies", "Baseline", "HealthRecords", "HealthSql", "LeadResponses", "Measured"]
