"""Forecast accuracy and bias against locked calls: SQL sums per rep, folded by `domain.accuracy`.

For a period and a lock (the latest on or before `as_of`), each rep in the caller's
scope is one `Subject`: the locked call (a manager's adjustment first), the system
figures at the lock, the won amount of the period (actual), the locked open commit
and what of it closed won, and the Brier terms of the deals open at the lock. Bias
repeats that for the last closed periods. Never loads deals; never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement

from kit.auth import Principal
from kit.errors import FailedPrecondition, InvalidArgument
from kit.resources import UnitOfWork
from services.pipeline import pipeline_settings
from services.pipeline.domain import accuracy as acc
from services.pipeline.domain import forecast as f
from services.pipeline.forecasting import Covered, check_scope, scope_of
from services.pipeline.repositories.calls import CallLocks, CallSums
from services.pipeline.repositories.deals import in_org, visible_where
from services.pipeline.store import DealRow, SnapshotDealRow
from services.pipeline.store_calls import CallLockRow, LockedCallRow


async def local_today(uow: UnitOfWork, at: datetime) -> date:
    """The tenant-calendar date of `at` (the pipeline settings' zone)."""
    zone = (await pipeline_settings.current(uow)).time_zone or pipeline_settings.DEFAULTS.time_zone
    return at.astimezone(ZoneInfo(zone)).date()


@dataclass(frozen=True)
class Scope:
    org_path: str = ""
    user_ids: tuple[str, ...] = ()

    def where(self, who: Principal, owner: object, org: object) -> list[ColumnElement[bool]]:
        c: list[ColumnElement[bool]] = [visible_where(who, owner, org)]
        if self.org_path:
            c.append(in_org(org, self.org_path))
        if self.user_ids:
            c.append(owner.in_(self.user_ids))  # type: ignore[attr-defined]
        return c


@dataclass(frozen=True)
class Measured:
    lock: CallLockRow
    level: f.Level
    total: acc.Score
    rows: list[acc.ScoreRow]
    period_closed: bool
    currency: str
    covers: Covered


async def subjects(
    uow: UnitOfWork, who: Principal, lock: CallLockRow, scope: Scope
) -> tuple[list[acc.Subject], dict[str, int]]:
    """Every rep of the scope at the lock, with outcome; and the units' own locked calls."""
    locks, sums = CallLocks(uow), CallSums(uow)
    L, D, S = LockedCallRow, DealRow, SnapshotDealRow
    locked = await locks.calls(lock.lock_id, scope.where(who, L.subject_key, L.org_path))
    # Units' own calls, of the units the caller manages (a rep sees none).
    units = await locks.calls(lock.lock_id, [L.level != "REP", *scope.where(who, L.subject_key, L.org_path)])
    won = await sums.won_by_owner(
        lock.period_start, lock.period_end, scope.where(who, D.owner_user_id, D.org_path)
    )
    outcomes = await sums.outcomes_by_owner(
        lock.snapshot_id, lock.period_end, scope.where(who, S.owner_user_id, S.org_path)
    )
    reps = {r.subject_key: r for r in locked if r.level == "REP"}
    actual: dict[str, int] = {}
    orgs: dict[str, str] = {k: r.org_path for k, r in reps.items()}
    for owner, org, amount in won:
        actual[owner] = actual.get(owner, 0) + amount
        orgs.setdefault(owner, org)
    outcome = {o.owner: o for o in outcomes}
    for each in outcomes:
        orgs.setdefault(each.owner, each.org_path)
    out: list[acc.Subject] = []
    for key in sorted(orgs):
        r, o = reps.get(key), outcome.get(key)
        out.append(
            acc.Subject(
                key=key,
                org_path=orgs[key],
                actual=actual.get(key, 0),
                rep_call=r.call_commit_minor if r is not None else None,
                adjusted_call=r.adjusted_commit_minor if r is not None else None,
                system_weighted=r.system_weighted_minor if r is not None else 0,
                system_commit=r.system_commit_minor if r is not None else 0,
                locked_commit=o.locked_commit if o else 0,
                won_from_commit=o.won_from_commit if o else 0,
                brier_sum=o.brier_sum if o else 0.0,
                brier_n=o.brier_n if o else 0,
            )
        )
    unit_calls: dict[str, int] = {}
    for u in units:
        figure = u.adjusted_commit_minor if u.adjusted_commit_minor is not None else u.call_commit_minor
        if figure is not None:
            unit_calls[u.subject_key] = figure
    return out, unit_calls


def _level(covers: Covered, scope: Scope, level: f.Level | None) -> f.Level:
    chosen = level or covers.level_below(bool(scope.user_ids))
    if chosen is f.Level.COMPANY and scope.org_path:
        raise InvalidArgument.field("group_by", "a scoped accuracy is grouped below the company")
    return chosen


async def measure(
    uow: UnitOfWork,
    who: Principal,
    granularity: f.Granularity,
    day: date,
    scope: Scope,
    level: f.Level | None,
    weighted: bool,
    as_of: date | None,
    today: date,
) -> Measured:
    check_scope(who, scope.org_path)
    covers = scope_of(who, scope.org_path, scope.user_ids)
    chosen = _level(covers, scope, level)
    start, end = f.period_bounds(granularity, day)
    lock = await CallLocks(uow).latest(granularity.value, start, as_of or min(end, today))
    if lock is None:
        raise FailedPrecondition(
            f"no call of the {granularity.value.lower()} starting {start} is locked yet (on or before as_of)",
            reason="NO_LOCKED_CALL",
        )
    found, unit_calls = await subjects(uow, who, lock, scope)
    total, rows = acc.fold(found, chosen, weighted, unit_calls)
    return Measured(lock, chosen, total, rows, end < today, lock.currency, covers)


@dataclass(frozen=True)
class PeriodPoint:
    start: date
    end: date
    forecast: int
    actual: int


@dataclass(frozen=True)
class SubjectBias:
    key: str
    org_path: str
    points: list[PeriodPoint]
    bias: acc.Bias


async def biases(
    uow: UnitOfWork,
    who: Principal,
    granularity: f.Granularity,
    scope: Scope,
    level: f.Level,
    weighted: bool,
    count: int,
    today: date,
) -> list[SubjectBias]:
    """Per subject at `level`: (forecast, actual) over the last `count` closed periods with a lock."""
    check_scope(who, scope.org_path)
    settings = await pipeline_settings.current(uow)
    threshold = settings.bias_threshold_ratio or 0.10
    min_periods = settings.bias_min_periods or 3
    locks = CallLocks(uow)
    periods = sorted(await locks.closed_periods(granularity.value, today, count))
    history: dict[str, tuple[str, list[PeriodPoint]]] = {}
    for start, end in periods:
        lock = await locks.latest(granularity.value, start, end)
        if lock is None:
            continue
        found, unit_calls = await subjects(uow, who, lock, scope)
        _, rows = acc.fold(found, level, weighted, unit_calls)
        for r in rows:
            point = PeriodPoint(start, end, r.score.forecast, r.score.actual)
            history.setdefault(r.key, (r.org_path, []))[1].append(point)
    out = []
    for key in sorted(history):
        org, points = history[key]
        b = acc.bias([(p.forecast, p.actual) for p in points], threshold, min_periods)
        out.append(SubjectBias(key, org, points, b))
    return out


__all__ = ["Measured", "PeriodPoint", "Scope", "SubjectBias", "biases", "local_today", "measure", "subjects"]
