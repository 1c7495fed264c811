"""Forecast submissions, their audit, call locks and locked calls: every query of calls and accuracy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, case, func, literal, select, tuple_, update
from sqlalchemy.orm import aliased

from kit.db import Database
from kit.resources import Page, PageRequest, Repository, Sort, UnitOfWork
from services.pipeline.store import DealRow, MemberProfileRow, SnapshotDealRow
from services.pipeline.store_calls import (
    CallLockRow,
    CoachingViewRow,
    LockedCallRow,
    SubmissionChangeRow,
    SubmissionRow,
)

S = SubmissionRow


def _newest_first() -> ColumnElement[int]:
    """1 for the newest submission of its (level, kind, subject) among the rows selected."""
    return func.row_number().over(  # type: ignore[no-any-return]
        partition_by=(S.level, S.kind, S.subject_key),
        order_by=(S.submitted_at.desc(), S.submission_id.desc()),
    )


class Submissions(Repository[SubmissionRow]):
    model = SubmissionRow
    resource = "pipeline.ForecastSubmission"
    key = ("submission_id",)

    async def in_force(self, granularity: str, start: date, at: datetime) -> list[SubmissionRow]:
        """The latest submission per (level, kind, subject) of a period submitted by `at` (a few rows)."""
        rank = _newest_first().label("rank")
        inner = (
            select(S.submission_id, rank)
            .where(S.granularity == granularity, S.period_start == start, S.submitted_at <= at)
            .subquery()
        )
        stmt = select(S).join(inner, S.submission_id == inner.c.submission_id).where(inner.c.rank == 1)
        return list(await self.session.scalars(stmt))

    async def latest_ids(self, rows: Sequence[SubmissionRow]) -> set[str]:
        """Which of `rows` are still the latest of their subject and period."""
        if not rows:
            return set()
        subjects = {(r.granularity, r.period_start, r.level, r.kind, r.subject_key) for r in rows}
        rank = func.row_number().over(
            partition_by=(S.granularity, S.period_start, S.level, S.kind, S.subject_key),
            order_by=(S.submitted_at.desc(), S.submission_id.desc()),
        )
        inner = (
            select(S.submission_id, rank.label("rank"))
            .where(tuple_(S.granularity, S.period_start, S.level, S.kind, S.subject_key).in_(list(subjects)))
            .subquery()
        )
        found = await self.session.scalars(select(inner.c.submission_id).where(inner.c.rank == 1))
        return set(found)

    async def page(
        self, where: Sequence[ColumnElement[bool]], latest_only: bool, page: PageRequest, query: str
    ) -> Page[SubmissionRow]:
        """Newest first. `latest_only`: no newer submission of the same subject and period exists."""
        clauses = list(where)
        if latest_only:
            newer = aliased(SubmissionRow)
            clauses.append(
                ~select(literal(1))
                .where(
                    newer.tenant_id == S.tenant_id,
                    newer.granularity == S.granularity,
                    newer.period_start == S.period_start,
                    newer.level == S.level,
                    newer.kind == S.kind,
                    newer.subject_key == S.subject_key,
                    tuple_(newer.submitted_at, newer.submission_id) > tuple_(S.submitted_at, S.submission_id),
                )
                .exists()
            )
        order = [Sort(S.submitted_at, descending=True), Sort(S.submission_id, descending=True)]
        return await self.list(clauses, order, page, query)

    async def of_rep_elsewhere(self, user_id: str, org_path: str) -> list[SubmissionRow]:
        """A rep's own submissions (calls and adjustments of them) not yet homed at `org_path`."""
        stmt = select(S).where(S.level == "REP", S.subject_key == user_id, S.org_path != org_path)
        return list(await self.session.scalars(stmt))

    async def rehome(self, ids: Sequence[str], org_path: str) -> None:
        await self.session.execute(update(S).where(S.submission_id.in_(list(ids))).values(org_path=org_path))

    async def changes(self, ids: Sequence[str]) -> dict[str, list[SubmissionChangeRow]]:
        out: dict[str, list[SubmissionChangeRow]] = {i: [] for i in ids}
        if not ids:
            return out
        stmt = (
            select(SubmissionChangeRow)
            .where(SubmissionChangeRow.submission_id.in_(list(ids)))
            .order_by(SubmissionChangeRow.change_id)
        )
        for c in await self.session.scalars(stmt):
            out[c.submission_id].append(c)
        return out

    async def record(self, *changes: SubmissionChangeRow) -> None:
        self.session.add_all(changes)
        await self.session.flush()


class CallLocks(Repository[CallLockRow]):
    model = CallLockRow
    resource = "pipeline.CallLock"
    key = ("lock_id",)

    async def at_point(self, granularity: str, start: date, point: str) -> CallLockRow | None:
        stmt = select(CallLockRow).where(
            CallLockRow.granularity == granularity,
            CallLockRow.period_start == start,
            CallLockRow.lock_point == point,
        )
        return await self.session.scalar(stmt)  # type: ignore[no-any-return]

    async def of_period(self, granularity: str, start: date) -> list[CallLockRow]:
        stmt = (
            select(CallLockRow)
            .where(CallLockRow.granularity == granularity, CallLockRow.period_start == start)
            .order_by(CallLockRow.locked_at)
        )
        return list(await self.session.scalars(stmt))

    async def latest(self, granularity: str, start: date, on_or_before: date) -> CallLockRow | None:
        stmt = (
            select(CallLockRow)
            .where(
                CallLockRow.granularity == granularity,
                CallLockRow.period_start == start,
                CallLockRow.lock_date <= on_or_before,
            )
            .order_by(CallLockRow.locked_at.desc(), CallLockRow.lock_id.desc())
            .limit(1)
        )
        return await self.session.scalar(stmt)  # type: ignore[no-any-return]

    async def closed_periods(self, granularity: str, before: date, limit: int) -> list[tuple[date, date]]:
        """The latest `limit` periods that ended before `before` and have a lock, newest first."""
        stmt = (
            select(CallLockRow.period_start, CallLockRow.period_end)
            .where(CallLockRow.granularity == granularity, CallLockRow.period_end < before)
            .group_by(CallLockRow.period_start, CallLockRow.period_end)
            .order_by(CallLockRow.period_start.desc())
            .limit(limit)
        )
        return [(s, e) for s, e in (await self.session.execute(stmt)).all()]

    async def calls(self, lock_id: str, where: Sequence[ColumnElement[bool]] = ()) -> list[LockedCallRow]:
        stmt = select(LockedCallRow).where(LockedCallRow.lock_id == lock_id, *where)
        return list(await self.session.scalars(stmt.order_by(LockedCallRow.level, LockedCallRow.subject_key)))

    async def add_calls(self, rows: Sequence[LockedCallRow]) -> None:
        self.session.add_all(rows)
        await self.session.flush()


@dataclass(frozen=True)
class OwnerFigure:
    """A rep's system figure in a snapshot: weighted open + won, and open unfrozen COMMIT + won."""

    owner: str
    org_path: str
    weighted: int
    commit: int


@dataclass(frozen=True)
class OwnerOutcome:
    """Per rep, since a lock: locked commit, the part of it won in the period, Brier terms."""

    owner: str
    org_path: str
    locked_commit: int
    won_from_commit: int
    brier_sum: float
    brier_n: int


class CallSums:
    """Aggregates behind locks and accuracy, summed in SQL per owner (never deal by deal)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session
        self.tenant = uow.tenant

    async def system_by_owner(self, snapshot_id: str) -> list[OwnerFigure]:
        d = SnapshotDealRow
        open_ = and_(d.status == "OPEN", d.forecast_category != "OMITTED")
        won = d.status == "WON"
        commit = and_(d.status == "OPEN", d.forecast_category == "COMMIT", d.frozen.is_(False))
        stmt = (
            select(
                d.owner_user_id,
                d.org_path,
                func.sum(case((open_, d.weighted_minor), (won, d.amount_minor), else_=0)),
                func.sum(case((commit, d.amount_minor), (won, d.amount_minor), else_=0)),
            )
            .where(d.tenant_id == self.tenant, d.snapshot_id == snapshot_id)
            .group_by(d.owner_user_id, d.org_path)
        )
        return [
            OwnerFigure(o, p, int(w or 0), int(c or 0))
            for o, p, w, c in (await self.session.execute(stmt)).all()
        ]

    async def won_by_owner(
        self, start: date, end: date, where: Sequence[ColumnElement[bool]] = ()
    ) -> list[tuple[str, str, int]]:
        """(owner, org path, won amount) of deals won with close date in [start, end]."""
        stmt = (
            select(DealRow.owner_user_id, DealRow.org_path, func.sum(DealRow.amount_minor))
            .where(
                DealRow.status == "WON",
                DealRow.expected_close_date >= start,
                DealRow.expected_close_date <= end,
                *where,
            )
            .group_by(DealRow.owner_user_id, DealRow.org_path)
        )
        return [(o, p, int(a or 0)) for o, p, a in (await self.session.execute(stmt)).all()]

    async def outcomes_by_owner(
        self, snapshot_id: str, end: date, where: Sequence[ColumnElement[bool]] = ()
    ) -> list[OwnerOutcome]:
        """Deals open at the lock's snapshot, joined with how they stand now, summed per owner then."""
        s = SnapshotDealRow
        commit = and_(s.forecast_category == "COMMIT", s.frozen.is_(False))
        won_in_period = and_(DealRow.status == "WON", DealRow.expected_close_date <= end)
        decided = DealRow.status.in_(("WON", "LOST"))
        outcome = case((DealRow.status == "WON", 1.0), else_=0.0)
        p = s.probability / 100.0
        stmt = (
            select(
                s.owner_user_id,
                s.org_path,
                func.sum(case((commit, s.amount_minor), else_=0)),
                func.sum(case((and_(commit, won_in_period), s.amount_minor), else_=0)),
                func.sum(case((decided, (p - outcome) * (p - outcome)), else_=0.0)),
                func.sum(case((decided, 1), else_=0)),
            )
            .join(DealRow, and_(DealRow.tenant_id == s.tenant_id, DealRow.deal_id == s.deal_id))
            .where(s.tenant_id == self.tenant, s.snapshot_id == snapshot_id, s.status == "OPEN", *where)
            .group_by(s.owner_user_id, s.org_path)
        )
        return [
            OwnerOutcome(o, path, int(c or 0), int(w or 0), float(b or 0.0), int(n or 0))
            for o, path, c, w, b, n in (await self.session.execute(stmt)).all()
        ]


class CoachingViews(Repository[CoachingViewRow]):
    model = CoachingViewRow
    resource = "pipeline.ForecastCoachingView"
    key = ("coaching_view_id",)


async def display_names(uow: UnitOfWork, user_ids: Sequence[str]) -> dict[str, str]:
    """Names of members from their profiles (reps without a profile are shown by id)."""
    ids = list(user_ids)
    out: dict[str, str] = {}
    for i in range(0, len(ids), 500):  # bounded bound parameters per statement
        stmt = select(MemberProfileRow.user_id, MemberProfileRow.display_name).where(
            MemberProfileRow.user_id.in_(ids[i : i + 500])
        )
        out.update({u: n for u, n in (await uow.session.execute(stmt)).all()})
    return out


async def tenants_with_deals(db: Database) -> list[str]:
    """Every tenant that has deals (a cross-tenant read: the schedules are per tenant)."""
    async with db.system_session() as session:
        found = await session.scalars(select(DealRow.tenant_id).distinct().order_by(DealRow.tenant_id))
        return list(found)


__all__ = [
    "CallLocks",
    "CallSums",
    "CoachingViews",
    "OwnerFigure",
    "OwnerOutcome",
    "Submissions",
    "display_names",
    "tenants_with_deals",
]
