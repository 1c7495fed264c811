"""The tenant's pipeline settings: one versioned settings document (kit's store keeps every version).

In effect now: `base_currency` (every deal's and forecast's currency; v1 keeps one
per tenant) and `converted_deal_close_offset_days`. The others are stored and
served for the features that read them as they land (weekly update freezing,
snapshots, coaching, anomalies, bias, reconciliation).
"""

from __future__ import annotations

import math
import typing
import zoneinfo
from collections.abc import Mapping

from google.protobuf.field_mask_pb2 import FieldMask
from google.type import dayofweek_pb2, timeofday_pb2  # type: ignore[import-untyped]

from kit.auth import Principal
from kit.errors import FailedPrecondition, Violations
from kit.resources import TenantSettings, UnitOfWork, merge_update
from kit.resources.settings import Stored
from salesops.pipeline.v1 import settings_pb2, types_pb2
from services.pipeline import access
from services.pipeline.store import settings

DEFAULTS = settings_pb2.PipelineSettings(
    time_zone="Asia/Shanghai",
    base_currency="CNY",
    weekly_update=settings_pb2.WeeklyUpdatePolicy(
        due_day=dayofweek_pb2.FRIDAY, due_time=timeofday_pb2.TimeOfDay(hours=18)
    ),
    snapshot_day=dayofweek_pb2.FRIDAY,
    snapshot_time=timeofday_pb2.TimeOfDay(hours=20),
    coaching_tenure_months=6,
    coaching_lookback_months=12,
    anomaly_sigma=2.0,
    anomaly_baseline_periods=12,
    bias_threshold_ratio=0.10,
    bias_min_periods=3,
    unpaid_grace=types_pb2.TimeLimit(value=7, unit=types_pb2.TIME_UNIT_CALENDAR_DAYS),
    amount_tolerance_bps=0,
    converted_deal_close_offset_days=90,
    default_payment_term_days=30,
)
STORE = TenantSettings(settings_pb2.PipelineSettings, DEFAULTS, tables=settings)
_READ = "pipeline_settings"  # the unit of work's session.info key of its read of the settings


async def _stored(uow: UnitOfWork) -> Stored[settings_pb2.PipelineSettings]:
    """The settings as this unit of work read them: one read per unit of work (CreateApproval read them
    twice, the currency and the calendar). Its session is its own and lives as long as it does; `update`
    drops the read when it writes. Callers get copies or plain fields, never the kept message."""
    info = uow.session.info
    got = info.get(_READ)
    if got is None:
        got = info[_READ] = await STORE.load(uow)
    return typing.cast(Stored[settings_pb2.PipelineSettings], got)


async def current(uow: UnitOfWork) -> settings_pb2.PipelineSettings:
    stored = await _stored(uow)
    value = settings_pb2.PipelineSettings()
    value.CopyFrom(stored.value)
    if stored.updated_at is not None:
        value.audit.update_time.FromDatetime(stored.updated_at)
        value.audit.updated_by = stored.updated_by
    return value


async def base_currency(uow: UnitOfWork) -> str:
    return (await _stored(uow)).value.base_currency or DEFAULTS.base_currency


MAX_COUNT = 3660  # days, months or periods: ten years of days is past any real setting
MAX_RATIO = 100.0


def _check(s: settings_pb2.PipelineSettings) -> None:
    v = Violations()
    try:
        zoneinfo.ZoneInfo(s.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        v.add("settings.time_zone", "an IANA time zone such as Asia/Shanghai")
    if len(s.base_currency) != 3 or not s.base_currency.isalpha() or not s.base_currency.isupper():
        v.add("settings.base_currency", "an ISO 4217 code such as CNY")
    for name in (
        "coaching_tenure_months",
        "coaching_lookback_months",
        "anomaly_baseline_periods",
        "bias_min_periods",
        "converted_deal_close_offset_days",
        "default_payment_term_days",
    ):
        # Bounded above too: a 2^31-day offset overflows the calendar in every conversion.
        if not 0 < getattr(s, name) <= MAX_COUNT:
            v.add(f"settings.{name}", f"1-{MAX_COUNT}")
    for name in ("anomaly_sigma", "bias_threshold_ratio"):
        value = getattr(s, name)
        if not (math.isfinite(value) and 0 < value <= MAX_RATIO):  # NaN compares false everywhere
            v.add(f"settings.{name}", f"a positive number up to {MAX_RATIO}")
    if not 0 <= s.amount_tolerance_bps <= 10_000:
        v.add("settings.amount_tolerance_bps", "0-10000")
    v.raise_if_any("invalid pipeline settings")


async def update(
    uow: UnitOfWork,
    who: Principal,
    incoming: settings_pb2.PipelineSettings,
    mask: FieldMask,
    in_use: Mapping[str, int],
) -> settings_pb2.PipelineSettings:
    """Admin only; a merge checked whole; the currency is fixed once the tenant holds money in it
    (`in_use`: what holds amounts -> how many, e.g. deals, targets; no FX in v1)."""
    access.require_admin(who)
    before = await current(uow)
    merged = merge_update(before, incoming, mask, mask_field="update_mask")
    merged.ClearField("audit")
    _check(merged)
    holding = [name for name, n in in_use.items() if n]
    if merged.base_currency != before.base_currency and holding:
        raise FailedPrecondition(
            f"the base currency cannot change once the tenant has {' and '.join(holding)}: "
            "their amounts would not add up",
            reason="CURRENCY_IN_USE",
        )
    uow.session.info.pop(_READ, None)
    await STORE.put(uow, merged, incoming.etag, who.user_id)
    return await current(uow)
