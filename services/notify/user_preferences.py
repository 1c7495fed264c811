"""Preference use cases: a user's own (or, for admins and services, anyone's) and their digest preview."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask

from kit.errors import InvalidArgument, Violations
from kit.resources import UnitOfWork
from salesops.notify.v1 import digest_pb2, preference_pb2
from services.notify import convert, digests, tenant_settings
from services.notify.documents import Documents
from services.notify.domain import digest as digest_rules
from services.notify.domain import locale
from services.notify.preferences import DEFAULT_LOCALE, DEFAULT_TIME_ZONE, effective
from services.notify.repositories.configuration import PreferenceRepository
from services.notify.repositories.subscribers import SubscriberRepository

Preference = preference_pb2.Preference


def check(pref: Preference) -> None:
    v = Violations()
    locale.check(
        v,
        locale=pref.locale,
        locale_field="preference.locale",
        zone=pref.time_zone,
        zone_field="preference.time_zone",
    )
    q = pref.quiet_hours
    if q.enabled:
        for name, t in (("start_time", q.start_time), ("end_time", q.end_time)):
            if not (0 <= t.hours < 24 and 0 <= t.minutes < 60):
                v.add(f"preference.quiet_hours.{name}", "a time of day")
        if (q.start_time.hours, q.start_time.minutes) == (q.end_time.hours, q.end_time.minutes):
            v.add("preference.quiet_hours.end_time", "must differ from start_time")
    r = pref.rate_limit
    if r.HasField("window") and not _span_ok(r.window):
        # now - window overflowed: one recipient's preference made every send to them INTERNAL.
        v.add("preference.rate_limit.window", f"between 0 and {convert.MAX_SPAN.days} days")
    v.raise_if_any("invalid preference")
    effective(pref)  # parses cleanly


def _span_ok(value: Duration) -> bool:
    try:
        convert.request_span(value, "")
    except InvalidArgument:
        return False
    return True


def _prepare(_stored: Preference | None, proposed: Preference) -> Preference:
    check(proposed)
    return proposed


PREFERENCES = Documents(PreferenceRepository, Preference, "user_id", prepare=_prepare)


async def get(uow: UnitOfWork, user_id: str) -> Preference:
    row = await PreferenceRepository(uow).find(user_id)
    if row is None:
        return Preference(user_id=user_id, locale=DEFAULT_LOCALE, time_zone=DEFAULT_TIME_ZONE)
    return PREFERENCES.read(row)


async def update(uow: UnitOfWork, incoming: Preference, mask: FieldMask) -> Preference:
    """Creates on the first update."""
    return await PREFERENCES.update(uow, incoming, mask, missing=lambda: Preference(user_id=incoming.user_id))


async def preview_digest(uow: UnitOfWork, user_id: str, day: date | None) -> digest_pb2.Digest:
    pref = await PreferenceRepository(uow).find(user_id)
    subscriber = await SubscriberRepository(uow).find(user_id)
    roles = set((subscriber.roles if subscriber else "").split(","))
    cfg = digests.settings_for(
        PREFERENCES.read(pref) if pref else None, roles, await tenant_settings.load_defaults(uow.session)
    )
    day = day or datetime.now(ZoneInfo(cfg.time_zone)).date()
    sections = digest_rules.build(await digests.entries(uow.session, user_id, day), day, cfg.time_zone)
    out = digests.as_proto(user_id, day, cfg.time_zone, sections)
    if cfg.enabled and (sections or not cfg.skip_when_empty):
        local = datetime.combine(day, cfg.send_time, tzinfo=ZoneInfo(cfg.time_zone))
        out.scheduled_time.FromDatetime(local.astimezone(UTC))
    return out


def calendar_date(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidArgument.field("date", "not a calendar date") from None
