"""A user's preferences and digest preview."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from kit.errors import (
    Aborted,
    InvalidArgument,
)
from kit.grpc import context as call
from salesops.notify.v1 import (
    preference_pb2,
)
from services.notify import (
    digests,
    tenant_settings,
)
from services.notify.api.base import ApiBase, Ctx, M
from services.notify.api.base import user_of as _user
from services.notify.domain import digest as digest_rules
from services.notify.domain.quiet_hours import QuietWindow
from services.notify.domain.templates import LOCALES
from services.notify.preferences import effective
from services.notify.preferences import load as load_preferences
from services.notify.store import (
    PreferenceRow,
    SubscriberRow,
)


class PreferencesApi(ApiBase):
    async def GetPreference(self, request: M.GetPreferenceRequest, context: Ctx) -> M.GetPreferenceResponse:
        p = call.principal()
        user = _user(p, request.user_id)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(select(PreferenceRow).where(PreferenceRow.user_id == user))
        if row is None:
            return M.GetPreferenceResponse(
                preference=preference_pb2.Preference(user_id=user, locale="zh-CN", time_zone="Asia/Shanghai")
            )
        pref = preference_pb2.Preference.FromString(row.payload)
        pref.etag = str(row.version)
        return M.GetPreferenceResponse(preference=pref)

    async def UpdatePreference(
        self, request: M.UpdatePreferenceRequest, context: Ctx
    ) -> M.UpdatePreferenceResponse:
        p = call.principal()
        pref = preference_pb2.Preference()
        pref.CopyFrom(request.preference)
        pref.user_id = _user(p, pref.user_id)
        _check_preference(pref)
        now = datetime.now(UTC)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(select(PreferenceRow).where(PreferenceRow.user_id == pref.user_id))
            if row is None:
                row = PreferenceRow(user_id=pref.user_id, version=1, payload=b"", updated_at=now)
                s.add(row)
            else:
                if pref.etag and pref.etag != str(row.version):
                    raise Aborted("the preference changed since it was read; reload and retry")
                row.version += 1
            pref.etag = ""
            row.payload = pref.SerializeToString()
            row.updated_at = now
            await s.commit()
            pref.etag = str(row.version)
        return M.UpdatePreferenceResponse(preference=pref)

    async def PreviewDigest(self, request: M.PreviewDigestRequest, context: Ctx) -> M.PreviewDigestResponse:
        p = call.principal()
        user = _user(p, request.user_id)
        async with self.rt.db.session(p.tenant) as s:
            pref = (await load_preferences(s, [user])).get(user)
            roles = await s.scalar(select(SubscriberRow.roles).where(SubscriberRow.user_id == user))
            cfg = digests.settings_for(
                pref, set((roles or "").split(",")), await tenant_settings.load_defaults(s)
            )
            if request.HasField("date"):
                try:
                    day = date(request.date.year, request.date.month, request.date.day)
                except ValueError:
                    raise InvalidArgument.field("date", "not a calendar date") from None
            else:
                day = datetime.now(ZoneInfo(cfg.time_zone)).date()
            sections = digest_rules.build(await digests.entries(s, user, day), day, cfg.time_zone)
        out = digests.as_proto(user, day, cfg.time_zone, sections)
        if cfg.enabled and (sections or not cfg.skip_when_empty):
            local = datetime.combine(day, cfg.send_time, tzinfo=ZoneInfo(cfg.time_zone))
            out.scheduled_time.FromDatetime(local.astimezone(UTC))
        return M.PreviewDigestResponse(digest=out)


def _check_preference(pref: preference_pb2.Preference) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from kit.errors import Violations

    v = Violations()
    if pref.locale and pref.locale not in LOCALES:
        v.add("preference.locale", f"one of {', '.join(LOCALES)}")
    if pref.time_zone:
        try:
            ZoneInfo(pref.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            v.add("preference.time_zone", "not an IANA time zone")
    q = pref.quiet_hours
    if q.enabled:
        for name, t in (("start_time", q.start_time), ("end_time", q.end_time)):
            if not (0 <= t.hours < 24 and 0 <= t.minutes < 60):
                v.add(f"preference.quiet_hours.{name}", "a time of day")
        if (q.start_time.hours, q.start_time.minutes) == (q.end_time.hours, q.end_time.minutes):
            v.add("preference.quiet_hours.end_time", "must differ from start_time")
    v.raise_if_any("invalid preference")
    effective(pref)  # parses cleanly
    _ = QuietWindow
