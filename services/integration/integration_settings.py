"""The tenant's integration settings: one versioned `IntegrationSettings` document (kit keeps
every version). Admin only (or a partner key naming the method: `Principal.may_configure`).

The defaults are the constants the service used before the settings existed, so a tenant that
never saved any behaves as before. In effect: the sync lag threshold and explanation window,
partner token lifetime and rotation grace, transcript retention, and the keyword digest's time
zone, day, time and top N. Stored and checked, not yet read: the default replay window,
received-payload and dead-letter retention, the default retry policy and
`suspend_after_dead_letters` (0: subscriptions are suspended by 410 or 5 days failing only).
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message
from google.type import dayofweek_pb2, timeofday_pb2  # type: ignore[import-untyped]

from kit.auth import Principal
from kit.errors import PermissionDenied, Violations
from kit.resources import TenantSettings, UnitOfWork, merge_update
from salesops.integration.v1 import settings_pb2 as s
from services.integration.domain import keyword_digest as kd
from services.integration.domain import partner_keys as pk
from services.integration.domain import sync as sync_rules
from services.integration.store_settings import settings as tables

HOUR = 3600
DAY = 24 * HOUR


def _d(delta: timedelta) -> Duration:
    out = Duration()
    out.FromTimedelta(delta)
    return out


DEFAULTS = s.IntegrationSettings(
    default_lag_alert_threshold=_d(sync_rules.DEFAULT_THRESHOLD),
    lag_explanation_window=_d(sync_rules.EXPLANATION_WINDOW),
    default_replay_window=Duration(seconds=5 * 60),
    received_payload_retention=Duration(seconds=30 * DAY),
    dead_letter_retention=Duration(seconds=30 * DAY),
    partner_token_ttl=_d(pk.DEFAULT_TOKEN_TTL),
    rotation_grace_period=_d(pk.DEFAULT_GRACE),
    transcript_retention=Duration(seconds=90 * DAY),
    digest_top_n=kd.DEFAULT_TOP,
    digest_day=dayofweek_pb2.MONDAY,
    digest_time=timeofday_pb2.TimeOfDay(hours=8),
    time_zone=kd.DEFAULT_ZONE,
)
STORE = TenantSettings(s.IntegrationSettings, DEFAULTS, tables=tables)

# field -> (least, most) in seconds
RANGES: dict[str, tuple[int, int]] = {
    "default_lag_alert_threshold": (HOUR, 30 * DAY),
    "lag_explanation_window": (HOUR, 14 * DAY),
    "default_replay_window": (30, HOUR),
    "received_payload_retention": (3 * DAY, 365 * DAY),  # idempotency outlives a sender's retries
    "dead_letter_retention": (DAY, 365 * DAY),
    "partner_token_ttl": (60, int(pk.MAX_TOKEN_TTL.total_seconds())),
    "rotation_grace_period": (0, int(pk.MAX_GRACE.total_seconds())),
    "transcript_retention": (DAY, 3 * 365 * DAY),
}


def require_admin(who: Principal) -> None:
    if not who.may_configure:
        raise PermissionDenied("integration settings are for admins", reason="ADMIN_ONLY")


async def current(uow: UnitOfWork) -> s.IntegrationSettings:
    """The tenant's settings, defaults where never saved, with `etag` and `audit`."""
    stored = await STORE.load(uow)
    value = s.IntegrationSettings()
    value.CopyFrom(DEFAULTS)
    # A stored field replaces the default whole (MergeFrom would keep a default's hours under a
    # stored midnight, or 24 h under a stored grace of 0); fields never set keep their defaults.
    for field, stored_value in stored.value.ListFields():
        if field.message_type is not None:
            getattr(value, field.name).CopyFrom(stored_value)
        else:
            setattr(value, field.name, stored_value)
    value.etag = stored.etag
    if stored.updated_at is not None:
        value.audit.update_time.FromDatetime(stored.updated_at)
        value.audit.updated_by = stored.updated_by
    return value


def check(value: s.IntegrationSettings) -> None:
    """Every problem at once (INVALID_ARGUMENT with one field violation each)."""
    v = Violations()
    for name, (least, most) in RANGES.items():
        if _has(value, name):
            seconds = getattr(value, name).ToTimedelta().total_seconds()
            if not least <= seconds <= most:
                v.add(f"settings.{name}", f"between {_human(least)} and {_human(most)}")
    if not 1 <= value.digest_top_n <= 50:
        v.add("settings.digest_top_n", "1-50")
    if not dayofweek_pb2.MONDAY <= value.digest_day <= dayofweek_pb2.SUNDAY:
        v.add("settings.digest_day", "a day of the week")
    t = value.digest_time
    if not (0 <= t.hours <= 23 and 0 <= t.minutes <= 59 and t.seconds == 0 and t.nanos == 0):
        v.add("settings.digest_time", "hours and minutes of a day")
    try:
        ZoneInfo(value.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        v.add("settings.time_zone", f"not an IANA time zone: {value.time_zone[:64]!r}")
    if not 0 <= value.suspend_after_dead_letters <= 1000:
        v.add("settings.suspend_after_dead_letters", "0-1000 (0 = not by a count)")
    retry = value.default_retry_policy
    if not 0 <= retry.max_attempts <= 10:
        v.add("settings.default_retry_policy.max_attempts", "0-10 (0 = 10)")
    for name in ("initial_backoff", "max_backoff", "multiplier"):
        if _has(retry, name) if name != "multiplier" else retry.multiplier:
            v.add(f"settings.default_retry_policy.{name}", "custom schedules are not supported yet")
    v.raise_if_any("invalid integration settings")


def _has(message: Message, name: str) -> bool:
    return message.HasField(name)


def _human(seconds: int) -> str:
    for unit, size in (("days", DAY), ("hours", HOUR), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} seconds"


async def update(
    uow: UnitOfWork, who: Principal, incoming: s.IntegrationSettings, mask: FieldMask
) -> s.IntegrationSettings:
    """Merged, then checked whole (a partial update cannot leave it invalid); etag compare-and-set."""
    require_admin(who)
    before = await current(uow)
    merged = merge_update(before, incoming, mask, mask_field="update_mask")
    merged.ClearField("audit")
    check(merged)
    await STORE.put(uow, merged, incoming.etag, who.user_id)
    return await current(uow)


# --- Readers for the places that used constants (a field cleared by an update: its default).


def duration(value: s.IntegrationSettings, name: str) -> timedelta:
    source = value if _has(value, name) else DEFAULTS
    found: timedelta = getattr(source, name).ToTimedelta()
    return found


async def get(uow: UnitOfWork) -> s.IntegrationSettings:
    """Defaults filled in: what the use cases read."""
    return await current(uow)


def digest_zone(value: s.IntegrationSettings) -> str:
    return value.time_zone or DEFAULTS.time_zone


def digest_top_n(value: s.IntegrationSettings) -> int:
    return value.digest_top_n or DEFAULTS.digest_top_n
