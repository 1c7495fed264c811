"""Forecast snapshots: the forecast of a period frozen at a moment, with every deal as it stood.

TakeForecastSnapshot (admin) takes one now; the weekly schedule and the locked
calls will take theirs through the same use case. Rows are stored for every
level (region, city, team, rep); readers see the rows of their scope.
Never commits.
"""

from __future__ import annotations

from datetime import date, datetime

from ulid import ULID

from kit.auth import Principal
from kit.errors import InvalidArgument
from kit.resources import UnitOfWork
from salesops.pipeline.v1 import events_pb2, forecast_pb2, types_pb2
from services.pipeline import access, pipeline_settings, stage_models, target_cascade
from services.pipeline.convert import date_proto, enum_value
from services.pipeline.domain import forecast as f
from services.pipeline.presenters import totals_proto
from services.pipeline.repositories.forecast import ForecastSums
from services.pipeline.repositories.snapshots import Snapshots
from services.pipeline.store import SnapshotRow

SNAPSHOT_TAKEN = "pipeline.ForecastSnapshotTaken"
ROW_LEVELS = (f.Level.REGION, f.Level.CITY, f.Level.TEAM, f.Level.REP)


async def take(
    uow: UnitOfWork,
    who: Principal,
    granularity: f.Granularity,
    day: date,
    request_id: str,
    at: datetime,
    *,
    trigger: int = forecast_pb2.SNAPSHOT_TRIGGER_MANUAL,
) -> SnapshotRow:
    access.require_admin(who)
    if len(request_id) > 64:  # the column's width
        raise InvalidArgument.field("request_id", "at most 64 characters")
    repo = Snapshots(uow)
    if request_id and (earlier := await repo.by_request(request_id)) is not None:
        return earlier
    start, end = f.period_bounds(granularity, day)
    sums = await ForecastSums(uow).by_owner([], start, end)
    currency = await pipeline_settings.base_currency(uow)
    model = await stage_models.current(uow)
    snapshot_id = str(ULID())
    snap = forecast_pb2.ForecastSnapshot(
        snapshot_id=snapshot_id,
        trigger=trigger,  # type: ignore[arg-type]
        taken_by=who.user_id,
        take_date=date_proto(at.date()),
        stage_model_version=model.version,
    )
    snap.period.granularity = enum_value(types_pb2.PeriodGranularity, granularity.value)
    snap.period.start_date.CopyFrom(date_proto(start))
    snap.period.end_date.CopyFrom(date_proto(end))
    snap.take_time.FromDatetime(at)
    company, _ = f.fold(sums, f.Level.COMPANY)
    folded = {level: f.fold(sums, level)[1] for level in ROW_LEVELS}
    for level, rows in folded.items():  # targets beside the figures, as GetForecast shows them
        await target_cascade.beside_forecast(uow, who, granularity, start, "", (), level, company, rows)
    snap.company_totals.CopyFrom(totals_proto(company, currency))
    for level, rows in folded.items():
        for row in rows:
            snap.rows.add(
                level=enum_value(types_pb2.OrgLevel, level.name),
                key=row.key,
                display_name=row.key,
                org_path=row.org_path,
                totals=totals_proto(row.totals, currency),
            )
    stored = SnapshotRow(
        snapshot_id=snapshot_id,
        request_id=request_id or None,
        granularity=granularity.value,
        period_start=start,
        period_end=end,
        take_time=at,
        take_date=at.date(),
        body=snap.SerializeToString(deterministic=True),
    )
    await repo.add(stored)
    await repo.copy_deals(snapshot_id, start, end)
    taken = events_pb2.ForecastSnapshotTaken(
        snapshot_id=snapshot_id,
        period=snap.period,
        trigger=snap.trigger,
        take_time=snap.take_time,
        company_totals=snap.company_totals,
        row_count=len(snap.rows),
    )
    await uow.emit(SNAPSHOT_TAKEN, taken, subject=snapshot_id)
    return stored


__all__ = ["ROW_LEVELS", "SNAPSHOT_TAKEN", "take"]
