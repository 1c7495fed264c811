"""Weekly target calibrations: the gap against the committed target and a structured deviation
reason (A: decision chain changed, B: competitor price cut, C: our delivery late, ...), counted per
type and level in SQL. Never commit.
"""

from __future__ import annotations

import hashlib
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from kit.auth import Principal
from kit.errors import AlreadyExists, InvalidArgument, PermissionDenied, Violations
from kit.resources import UnitOfWork, sanitize_create
from salesops.pipeline.v1 import events_pb2, target_pb2, types_pb2
from services.pipeline import pipeline_settings
from services.pipeline.convert import date_proto, enum_name, enum_value, optional_date
from services.pipeline.domain import targets as t
from services.pipeline.repositories.targets import Calibrations, CalibrationSearch
from services.pipeline.store_targets import TargetCalibrationRow, TargetRow
from services.pipeline.targets import can_manage, check_money, period_proto, visible

TARGET_CALIBRATED = "pipeline.TargetCalibrated"
MAX_TEXT = 2000
MAX_DEALS, MAX_DEAL_ID = 50, 64
DEFAULT_WEEKS = 12  # SummarizeDeviationReasons without a window: the last 12 weeks
MAX_CLUSTERED = 2000  # details clustered per summary: the latest ones of the window


async def tenant_today(uow: UnitOfWork, at: datetime) -> date:
    """The tenant's calendar date of `at` (its time zone from the pipeline settings)."""
    zone = (await pipeline_settings.current(uow)).time_zone or pipeline_settings.DEFAULTS.time_zone
    return at.astimezone(zoneinfo.ZoneInfo(zone)).date()


def can_calibrate(who: Principal, target: TargetRow) -> bool:
    """The target's rep or owner, and whoever hands it down (its managers, admins)."""
    return who.user_id in (target.user_id, target.owner_user_id) or can_manage(
        who, target.level, target.org_path
    )


def _check(msg: target_pb2.TargetCalibration, currency: str) -> str:
    """Every problem at once; the reason type's name."""
    v = Violations()
    if not msg.calibration_id.strip() or len(msg.calibration_id) > 64:
        v.add("calibration.calibration_id", "required (a client-made ULID), at most 64 characters")
    check_money(
        v,
        "calibration.forecast_amount",
        msg.forecast_amount,
        currency,
        required=True,
        present=msg.HasField("forecast_amount"),
    )
    reason = enum_name(target_pb2.DeviationReasonType, msg.reason_type)
    if not reason or reason.startswith("UNKNOWN_"):
        v.add("calibration.reason_type", "required: a deviation reason type (NO_DEVIATION when on track)")
    elif reason == "OTHER" and not msg.reason_detail.strip():
        v.add("calibration.reason_detail", "required for OTHER")
    for name in ("reason_detail", "corrective_action"):
        if len(getattr(msg, name)) > MAX_TEXT:
            v.add(f"calibration.{name}", f"at most {MAX_TEXT} characters")
    if len(msg.deal_ids) > MAX_DEALS or any(not d.strip() or len(d) > MAX_DEAL_ID for d in msg.deal_ids):
        v.add("calibration.deal_ids", f"at most {MAX_DEALS} ids of 1-{MAX_DEAL_ID} characters")
    v.raise_if_any("invalid calibration")
    return reason


def _week(msg: target_pb2.TargetCalibration, target: TargetRow, today: date) -> date:
    week = optional_date(msg.week_start_date, "calibration.week_start_date") or t.monday(today)
    if week.weekday() != 0:
        raise InvalidArgument.field(
            "calibration.week_start_date", "a Monday (the start of the calibration week)"
        )
    if week > t.monday(today):
        raise InvalidArgument.field("calibration.week_start_date", "not a future week")
    if week > target.period_end or week + timedelta(days=6) < target.period_start:
        raise InvalidArgument.field(
            "calibration.week_start_date",
            f"a week of the target's period {target.period_start} to {target.period_end}",
        )
    return week


def _digest(msg: target_pb2.TargetCalibration) -> str:
    return hashlib.sha256(msg.SerializeToString(deterministic=True)).hexdigest()


async def calibrate(
    uow: UnitOfWork, who: Principal, incoming: target_pb2.TargetCalibration, at: datetime
) -> TargetCalibrationRow:
    msg = sanitize_create(incoming)
    target = await visible(uow, who, msg.target_id)
    reason = _check(msg, target.currency)
    if not can_calibrate(who, target):
        raise PermissionDenied(
            "calibrated by the target's rep or owner and its managers", reason="NOT_CALIBRATOR"
        )
    week = _week(msg, target, await tenant_today(uow, at))
    msg.week_start_date.CopyFrom(date_proto(week))
    repo = Calibrations(uow)
    digest = _digest(msg)
    found = await repo.find(msg.calibration_id)
    if found is not None:
        if found.request_digest == digest and found.target_id == target.target_id:
            return found  # a replay of the same calibration
        raise AlreadyExists(repo.resource, msg.calibration_id)
    same_week = await repo.of_week(target.target_id, week)
    if same_week is not None:
        raise AlreadyExists(
            repo.resource, same_week.calibration_id, f"{target.target_id} is calibrated for {week}"
        )
    gap = msg.forecast_amount.amount_minor - target.committed_minor
    msg.target_amount.amount_minor, msg.target_amount.currency = target.committed_minor, target.currency
    msg.gap_amount.amount_minor, msg.gap_amount.currency = gap, target.currency
    msg.level = enum_value(types_pb2.OrgLevel, target.level)
    msg.org_path, msg.user_id = target.org_path, target.user_id
    msg.period.CopyFrom(period_proto(target.granularity, target.period_start, target.period_end))
    row = TargetCalibrationRow(
        calibration_id=msg.calibration_id,
        target_id=target.target_id,
        week_start=week,
        granularity=target.granularity,
        period_start=target.period_start,
        level=target.level,
        org_path=target.org_path,
        user_id=target.user_id,
        owner_user_id=target.owner_user_id,
        currency=target.currency,
        forecast_minor=msg.forecast_amount.amount_minor,
        target_minor=target.committed_minor,
        gap_minor=gap,
        reason_type=reason,
        reason_detail=msg.reason_detail,
        created_at=at,
        created_by=who.user_id,
        request_digest=digest,
        body=msg.SerializeToString(deterministic=True),
    )
    await repo.add(row)
    event = events_pb2.TargetCalibrated(
        calibration_id=row.calibration_id,
        target_id=target.target_id,
        period=msg.period,
        level=msg.level,
        org_path=target.org_path,
        user_id=target.user_id,
        week_start_date=msg.week_start_date,
        target_amount=msg.target_amount,
        forecast_amount=msg.forecast_amount,
        gap_amount=msg.gap_amount,
        reason_type=msg.reason_type,
        calibrated_by=who.user_id,
    )
    await uow.emit(TARGET_CALIBRATED, event, subject=target.target_id)
    return row


@dataclass(frozen=True)
class Summary:
    overall: t.ReasonSummary
    levels: list[tuple[str, t.ReasonSummary]]
    clusters: list[t.Cluster]
    currency: str


async def summarize(
    uow: UnitOfWork, who: Principal, search: CalibrationSearch, at: datetime, *, clusters: bool = False
) -> Summary:
    """Counts per reason type, over every level and per level (SQL aggregates, folded); and, when
    asked, keyword clusters of the free-text details of the window's latest calibrations."""
    if search.week_from is None and search.week_to is None:
        this_week = t.monday(await tenant_today(uow, at))
        search = CalibrationSearch(
            org_path=search.org_path,
            user_ids=search.user_ids,
            week_from=this_week - timedelta(weeks=DEFAULT_WEEKS - 1),
            week_to=this_week,
        )
    repo = Calibrations(uow)
    overall, per_level = t.summarize_reasons(await repo.reason_sums(search, who))
    found = t.cluster_reasons(await repo.details(search, who, MAX_CLUSTERED)) if clusters else []
    return Summary(overall, per_level, found, await pipeline_settings.base_currency(uow))


__all__ = ["TARGET_CALIBRATED", "Summary", "calibrate", "can_calibrate", "summarize", "tenant_today"]
