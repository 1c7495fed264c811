"""A user's effective preferences: stored Preference proto over the tenant defaults."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from salesops.notify.v1 import preference_pb2
from services.notify import read_memo
from services.notify.convert import category_key
from services.notify.domain.quiet_hours import QuietWindow
from services.notify.domain.templates import LOCALES
from services.notify.repositories import on_session
from services.notify.repositories.configuration import PreferenceRepository

DEFAULT_LOCALE = "zh-CN"
DEFAULT_TIME_ZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class Effective:
    locale: str
    time_zone: str
    quiet: QuietWindow | None
    # category key -> external channels chosen (None = not set, use the sender's / defaults)
    channels: dict[str, tuple[int, ...]]
    inbox_only: frozenset[str]
    digest_only: frozenset[str] = frozenset()


def quiet_window(q: preference_pb2.QuietHours) -> QuietWindow | None:
    if not q.enabled:
        return None
    start = time(q.start_time.hours % 24, q.start_time.minutes)
    end = time(q.end_time.hours % 24, q.end_time.minutes)
    # google.type.DayOfWeek: MONDAY = 1 ... SUNDAY = 7; Python weekday(): Monday = 0.
    return QuietWindow(start, end, frozenset(int(d) - 1 for d in q.days))


def effective(pref: preference_pb2.Preference | None, tenant: Any = None) -> Effective:
    """The user's choices, falling back to the tenant's defaults (`tenant_settings.TenantDefaults`)."""
    locale = tenant.locale if tenant is not None else DEFAULT_LOCALE
    zone = tenant.time_zone if tenant is not None else DEFAULT_TIME_ZONE
    tenant_quiet = tenant.quiet if tenant is not None else None
    if pref is None:
        return Effective(locale, zone, tenant_quiet, {}, frozenset())
    return Effective(
        locale=pref.locale if pref.locale in LOCALES else locale,
        time_zone=pref.time_zone or zone,
        quiet=quiet_window(pref.quiet_hours) if pref.HasField("quiet_hours") else tenant_quiet,
        channels={category_key(c.category): tuple(c.channels) for c in pref.categories if c.channels},
        inbox_only=frozenset(category_key(c.category) for c in pref.categories if c.inbox_only),
        digest_only=frozenset(category_key(c.category) for c in pref.categories if c.digest_only),
    )


async def load(session: AsyncSession, user_ids: Iterable[str]) -> dict[str, preference_pb2.Preference]:
    """The stored preferences of those of `user_ids` who have any (once per user in a consumer's
    transaction: read_memo). Callers read them, never change them."""

    async def of_users(ids: list[str]) -> dict[str, preference_pb2.Preference]:
        found: dict[str, preference_pb2.Preference] = {}
        for row in await PreferenceRepository(on_session(session)).of_users(ids):
            pref = preference_pb2.Preference.FromString(row.payload)
            pref.etag = str(row.version)
            found[row.user_id] = pref
        return found

    return await read_memo.per_key(session, "preferences", user_ids, of_users)
