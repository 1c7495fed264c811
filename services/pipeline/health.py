"""Process health (use cases): a team's weekly process metrics against its own history.

Metrics are computed in SQL (repositories/health.py) for a week of the tenant
calendar (Monday to Sunday, tenant zone). The weekly run (the tenant's discipline
timer, Monday 00:30 tenant time, for the week just ended) stores every team's
values; those stored weeks are each team's baseline. A value outside mean +/- k
sigma (k = settings.anomaly_sigma, default 2) of the team's last N weeks
(settings.anomaly_baseline_periods, default 12; at least 4) is an anomaly: recorded
once per (team, week, metric, stage) and announced (ProcessAnomalyDetected) to the
team's supervisor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ulid import ULID

from kit.auth import Principal
from kit.errors import FailedPrecondition, InvalidArgument
from kit.resources import UnitOfWork
from salesops.pipeline.v1 import events_pb2, process_health_pb2, types_pb2
from services.pipeline import accuracy, pipeline_settings, stage_models
from services.pipeline.convert import date_proto, ts
from services.pipeline.domain import forecast as f
from services.pipeline.domain.discipline import week_start
from services.pipeline.repositories.health import Anomalies, Baseline, HealthRecords, HealthSql, Measured
from services.pipeline.store_discipline import AnomalyRow, HealthRunRow, HealthValueRow

ph = process_health_pb2
PROCESS_ANOMALY_DETECTED = "pipeline.ProcessAnomalyDetected"
MIN_BASELINE = 4
RUN_AT = time(0, 30)  # Monday, tenant time: the week before is over and late events had a moment

# metric -> (unit, higher is better)
METRICS: dict[str, tuple[ph.MetricUnit.ValueType, bool]] = {
    "LEAD_RESPONSE_TIME": (ph.METRIC_UNIT_HOURS, False),
    "SOLUTION_BUILD_TIME": (ph.METRIC_UNIT_DAYS, False),
    "NEGOTIATION_ROUNDS": (ph.METRIC_UNIT_COUNT, False),
    "STAGE_CONVERSION": (ph.METRIC_UNIT_RATIO, True),
    "STAGE_DWELL": (ph.METRIC_UNIT_DAYS, False),
    "SALES_CYCLE_TIME": (ph.METRIC_UNIT_DAYS, False),
    "WIN_RATE": (ph.METRIC_UNIT_RATIO, True),
    "AVERAGE_DEAL_SIZE": (ph.METRIC_UNIT_MONEY_MINOR, True),
    "APPROVAL_TURNAROUND": (ph.METRIC_UNIT_HOURS, False),
    "FROZEN_RATIO": (ph.METRIC_UNIT_RATIO, False),
    "GATE_REJECTION_RATE": (ph.METRIC_UNIT_RATIO, False),
    "FORECAST_ERROR": (ph.METRIC_UNIT_RATIO, False),
}
UNAVAILABLE = {
    "APPROVAL_TURNAROUND": "no approval of this unit was decided in the week",
    "FORECAST_ERROR": "no locked call of a closed quarter or month for this unit yet",
}
SYSTEM = Principal("system:pipeline", "", frozenset({"admin"}), "", datetime(2100, 1, 1, tzinfo=UTC))
NOTES = {
    "SOLUTION_BUILD_TIME": "deal creation to its first quote, for first quotes recorded in the week",
    "NEGOTIATION_ROUNDS": "quote evidence per deal closed in the week",
    "LEAD_RESPONSE_TIME": "business time to the first response (leads' FirstResponseRecorded)",
    "FORECAST_ERROR": "WAPE of the unit's locked calls in the last closed quarter (else month)",
    "APPROVAL_TURNAROUND": "submit to decision of the approvals decided in the week (the approval's org path)",
}


@dataclass(frozen=True)
class Tuning:
    zone: ZoneInfo
    sigma: float
    periods: int


async def tuning(uow: UnitOfWork) -> Tuning:
    s = await pipeline_settings.current(uow)
    d = pipeline_settings.DEFAULTS
    return Tuning(
        ZoneInfo(s.time_zone or d.time_zone),
        s.anomaly_sigma or d.anomaly_sigma,
        s.anomaly_baseline_periods or d.anomaly_baseline_periods,
    )


def week_bounds(week: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants of Monday 00:00 and the next Monday 00:00 in the tenant zone."""
    start = datetime.combine(week, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(week + timedelta(days=7), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


async def measure(uow: UnitOfWork, unit: str | None, week: date, zone: ZoneInfo) -> list[Measured]:
    model = await stage_models.current(uow)
    order = {stage.stage_id: i for i, stage in enumerate(model.stages)}
    start, end = week_bounds(week, zone)
    return await HealthSql(uow).week(unit, start, end, order)


async def forecast_error(uow: UnitOfWork, org_path: str, today: date) -> Measured | None:
    """WAPE of the unit's locked calls in the last closed quarter, else month (forecast accuracy's figures)."""
    who = replace(SYSTEM, tenant=uow.tenant)
    for granularity in (f.Granularity.QUARTER, f.Granularity.MONTH):
        current, _ = f.period_bounds(granularity, today)
        closed = current - timedelta(days=1)
        try:
            m = await accuracy.measure(
                uow, who, granularity, closed, accuracy.Scope(org_path), f.Level.TEAM, False, None, today
            )
        except (FailedPrecondition, InvalidArgument):
            continue  # no locked call of that period
        wape = m.total.wape
        if wape is not None:
            return Measured(org_path, "FORECAST_ERROR", "", wape, len(m.rows))
    return None


def evaluate(m: Measured, base: Baseline | None, t: Tuning) -> ph.ProcessMetricValue:
    """The value with its band; anomalous outside mean +/- k sigma of at least MIN_BASELINE past weeks."""
    unit, higher = METRICS[m.metric]
    out = ph.ProcessMetricValue(
        metric=ph.ProcessMetric.Value(f"PROCESS_METRIC_{m.metric}"),
        stage_id=m.stage_id,
        unit=unit,
        value=m.value,
        sample_size=m.sample_size,
        higher_is_better=higher,
        note=NOTES.get(m.metric, ""),
    )
    if base is None:
        return out
    sd = math.sqrt(max(0.0, base.mean_square - base.mean * base.mean))
    out.baseline_mean, out.baseline_stddev, out.baseline_periods = base.mean, sd, base.periods
    out.lower_bound, out.upper_bound = base.mean - t.sigma * sd, base.mean + t.sigma * sd
    # A flat history (sd 0) flags nothing: any change would be "infinitely" anomalous.
    if base.periods >= MIN_BASELINE and sd > 1e-12:
        if m.value > out.upper_bound:
            out.anomalous, out.direction = True, ph.ANOMALY_DIRECTION_ABOVE
        elif m.value < out.lower_bound:
            out.anomalous, out.direction = True, ph.ANOMALY_DIRECTION_BELOW
    return out


def unavailable(metric: str) -> ph.ProcessMetricValue:
    unit, higher = METRICS[metric]
    return ph.ProcessMetricValue(
        metric=ph.ProcessMetric.Value(f"PROCESS_METRIC_{metric}"),
        unit=unit,
        higher_is_better=higher,
        unavailable=True,
        note=UNAVAILABLE[metric],
    )


def z_score(v: ph.ProcessMetricValue) -> float:
    return (v.value - v.baseline_mean) / v.baseline_stddev if v.baseline_stddev else 0.0


def adverse(v: ph.ProcessMetricValue) -> bool:
    return (v.direction == ph.ANOMALY_DIRECTION_ABOVE) != v.higher_is_better


def _period(week: date) -> types_pb2.SalesPeriod:
    return types_pb2.SalesPeriod(
        granularity=types_pb2.PERIOD_GRANULARITY_WEEK,
        start_date=date_proto(week),
        end_date=date_proto(week + timedelta(days=6)),
    )


async def report(uow: UnitOfWork, org_path: str, day: date, at: datetime) -> ph.ProcessHealthReport:
    """The unit's report for the week of `day`: measured now, against its stored past weeks."""
    t = await tuning(uow)
    week = week_start(day)
    values = await measure(uow, org_path, week, t.zone)
    error = await forecast_error(uow, org_path, week + timedelta(days=6))
    if error is not None:
        values.append(error)
    bases = await HealthSql(uow).baselines(org_path, week, t.periods)
    out = ph.ProcessHealthReport(
        org_path=org_path, display_name=org_path or "company", period=_period(week), compute_time=ts(at)
    )
    for m in sorted(values, key=lambda v: (v.metric, v.stage_id)):
        out.metrics.append(evaluate(m, bases.get((m.metric, m.stage_id)), t))
    have = {m.metric for m in values}
    out.metrics.extend(unavailable(name) for name in UNAVAILABLE if name not in have)
    out.anomaly_count = sum(1 for v in out.metrics if v.anomalous)
    return out


def last_complete_week(at: datetime, zone: ZoneInfo) -> date:
    return week_start(at.astimezone(zone).date()) - timedelta(days=7)


def _run_time(week: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(week + timedelta(days=7), RUN_AT, tzinfo=zone).astimezone(UTC)


async def next_run(uow: UnitOfWork, at: datetime) -> datetime:
    """When the weekly run is due: now if the week just ended is not computed yet, else next Monday."""
    t = await tuning(uow)
    week = last_complete_week(at, t.zone)
    if _run_time(week, t.zone) <= at and not await HealthRecords(uow).ran(week):
        return at
    return _run_time(week + timedelta(days=7), t.zone)


async def run_due(uow: UnitOfWork, at: datetime) -> int:
    """Compute, store and flag the week just ended (once); returns 1 when it ran, else 0."""
    t = await tuning(uow)
    week = last_complete_week(at, t.zone)
    records = HealthRecords(uow)
    if at < _run_time(week, t.zone) or await records.ran(week):
        return 0
    measured = await measure(uow, None, week, t.zone)
    teams = sorted({m.org_path for m in measured})
    for team in teams:
        error = await forecast_error(uow, team, week + timedelta(days=6))
        if error is not None:
            measured.append(error)
    flagged = 0
    for team in teams:
        bases = await HealthSql(uow).baselines(team, week, t.periods)
        for m in (m for m in measured if m.org_path == team):
            value = evaluate(m, bases.get((m.metric, m.stage_id)), t)
            if value.anomalous:
                flagged += await _flag(uow, team, week, m, value, at)
    rows = [
        HealthValueRow(
            org_path=m.org_path,
            week_start=week,
            metric=m.metric,
            stage_id=m.stage_id,
            value=m.value,
            sample_size=m.sample_size,
            computed_at=at,
        )
        for m in measured
    ]
    await records.save(
        rows, HealthRunRow(week_start=week, computed_at=at, teams=len(teams), anomalies=flagged)
    )
    return 1


async def _flag(
    uow: UnitOfWork, team: str, week: date, m: Measured, value: ph.ProcessMetricValue, at: datetime
) -> int:
    records = HealthRecords(uow)
    if await records.anomaly_of(team, week, m.metric, m.stage_id) is not None:
        return 0
    manager = await records.team_manager(team)
    anomaly = ph.ProcessAnomaly(
        anomaly_id=str(ULID.from_datetime(at)),
        org_path=team,
        manager_user_id=manager,
        period=_period(week),
        value=value,
        z_score=z_score(value),
        adverse=adverse(value),
        detect_time=ts(at),
    )
    await Anomalies(uow).add(
        AnomalyRow(
            anomaly_id=anomaly.anomaly_id,
            org_path=team,
            week_start=week,
            metric=m.metric,
            stage_id=m.stage_id,
            adverse=anomaly.adverse,
            detected_at=at,
            body=anomaly.SerializeToString(),
        )
    )
    evt = events_pb2.ProcessAnomalyDetected(
        anomaly_id=anomaly.anomaly_id,
        org_path=team,
        manager_user_id=manager,
        period=anomaly.period,
        value=value,
        z_score=anomaly.z_score,
        adverse=anomaly.adverse,
    )
    await uow.emit(PROCESS_ANOMALY_DETECTED, evt, subject=anomaly.anomaly_id)
    return 1


__all__ = ["PROCESS_ANOMALY_DETECTED", "evaluate", "measure", "next_run", "report", "run_due"]
