"""A tenant's NotifySettings: stored overrides over the platform defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy.ext.asyncio import AsyncSession

from kit.errors import Violations
from kit.resources import TenantSettings, UnitOfWork, merge_update, sanitize_create
from salesops.notify.v1 import settings_pb2
from services.notify import convert, read_memo, store
from services.notify.convert import category_enum, category_key
from services.notify.domain import categories, locale, rate_limit
from services.notify.domain.quiet_hours import QuietWindow
from services.notify.preferences import quiet_window
from services.notify.repositories import on_session

DEFAULT_LOCALE = "zh-CN"
DEFAULT_TIME_ZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class TenantDefaults:
    locale: str = DEFAULT_LOCALE
    time_zone: str = DEFAULT_TIME_ZONE
    quiet: QuietWindow | None = None
    limit: rate_limit.Limit = field(default_factory=rate_limit.Limit)
    critical: dict[str, bool] = field(default_factory=dict)
    priority: dict[str, int] = field(default_factory=dict)
    dedupe_window: dict[str, timedelta] = field(default_factory=dict)
    default_dedupe_window: timedelta | None = None
    escalation_policy: dict[str, str] = field(default_factory=dict)
    default_channels: dict[str, tuple[int, ...]] = field(default_factory=dict)
    mandatory_channels: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def dedupe_for(self, category: str) -> timedelta:
        if category in self.dedupe_window:
            return self.dedupe_window[category]
        if self.default_dedupe_window is not None and category not in categories.POLICIES:
            return self.default_dedupe_window
        return categories.policy(category).dedupe_window

    def priority_for(self, category: str) -> int:
        return self.priority.get(category) or categories.policy(category).default_priority


PLATFORM = TenantDefaults()


def defaults(s: settings_pb2.NotifySettings | None) -> TenantDefaults:
    if s is None:
        return PLATFORM
    limit = rate_limit.Limit()
    if s.HasField("default_rate_limit"):
        window = (
            s.default_rate_limit.window.ToTimedelta()
            if s.default_rate_limit.HasField("window")
            else limit.window
        )
        limit = rate_limit.Limit(s.default_rate_limit.max_deliveries, window)
    policies = {category_key(p.category): p for p in s.category_policies}
    return TenantDefaults(
        locale=s.default_locale or DEFAULT_LOCALE,
        time_zone=s.default_time_zone or DEFAULT_TIME_ZONE,
        quiet=quiet_window(s.default_quiet_hours) if s.HasField("default_quiet_hours") else None,
        limit=limit,
        critical={k: p.critical for k, p in policies.items()},
        priority={k: int(p.default_priority) for k, p in policies.items() if p.default_priority},
        dedupe_window={
            k: p.dedupe_window.ToTimedelta() for k, p in policies.items() if p.HasField("dedupe_window")
        },
        default_dedupe_window=s.default_dedupe_window.ToTimedelta()
        if s.HasField("default_dedupe_window")
        else None,
        escalation_policy={k: p.escalation_policy_id for k, p in policies.items() if p.escalation_policy_id},
        default_channels={k: tuple(p.default_channels) for k, p in policies.items() if p.default_channels},
        mandatory_channels={
            k: tuple(p.mandatory_channels) for k, p in policies.items() if p.mandatory_channels
        },
    )


# The tenant's NotifySettings in kit's one settings store (etag = version, every version kept).
STORE = TenantSettings(settings_pb2.NotifySettings, settings_pb2.NotifySettings(), tables=store.settings)


async def load(session: AsyncSession) -> tuple[settings_pb2.NotifySettings | None, int]:
    """The stored settings (None before the first save) and their version."""
    stored = await STORE.load(on_session(session))
    return (stored.value if stored.version else None), stored.version


async def load_defaults(session: AsyncSession) -> TenantDefaults:
    """The tenant's defaults; read once per transaction of notify's event consumer (read_memo),
    which never writes settings; other sessions read them each time."""

    async def read() -> TenantDefaults:
        stored, _ = await load(session)
        return defaults(stored)

    return await read_memo.once(session, "defaults", read)


async def current(uow: UnitOfWork) -> settings_pb2.NotifySettings:
    """As clients see them: every platform default made explicit, with the etag."""
    stored = await STORE.load(uow)
    out = filled(stored.value if stored.version else None)
    out.etag = stored.etag
    return out


async def update(
    uow: UnitOfWork, incoming: settings_pb2.NotifySettings, mask: FieldMask, actor: str
) -> settings_pb2.NotifySettings:
    stored = await STORE.load(uow)
    merged = merge_update(stored.value, sanitize_create(incoming), mask)
    validate(merged)
    saved = await STORE.put(uow, merged, incoming.etag, actor)
    out = filled(saved)
    out.etag = saved.etag
    return out


def filled(stored: settings_pb2.NotifySettings | None) -> settings_pb2.NotifySettings:
    """The settings as a client sees them: every platform default made explicit."""
    out = settings_pb2.NotifySettings()
    if stored is not None:
        out.CopyFrom(stored)
    out.default_locale = out.default_locale or DEFAULT_LOCALE
    out.default_time_zone = out.default_time_zone or DEFAULT_TIME_ZONE
    if not out.HasField("default_rate_limit"):
        out.default_rate_limit.max_deliveries = rate_limit.DEFAULT_MAX
        out.default_rate_limit.window.FromTimedelta(rate_limit.DEFAULT_WINDOW)
    listed = {p.category for p in out.category_policies}
    for key, pol in categories.POLICIES.items():
        if category_enum(key) in listed:
            continue
        p = out.category_policies.add(critical=pol.critical)
        p.category = category_enum(key)  # type: ignore[assignment]
        p.default_priority = pol.default_priority  # type: ignore[assignment]
        p.dedupe_window.FromTimedelta(pol.dedupe_window)
        p.escalation_policy_id = "default"
    return out


def _span(value: Duration) -> timedelta:
    """A window as given; a negative one counts as over the range (it is never meant)."""
    span = value.ToTimedelta()
    return span if span >= timedelta(0) else convert.MAX_SPAN + timedelta(days=1)


def validate(s: settings_pb2.NotifySettings) -> None:
    v = Violations()
    locale.check(
        v,
        locale=s.default_locale,
        locale_field="settings.default_locale",
        zone=s.default_time_zone,
        zone_field="settings.default_time_zone",
    )
    if s.HasField("default_rate_limit"):
        r = s.default_rate_limit
        if r.max_deliveries < 0:
            v.add("settings.default_rate_limit.max_deliveries", "0 (unlimited) or more")
        if r.HasField("window") and not timedelta(minutes=1) <= _span(r.window) <= convert.MAX_SPAN:
            v.add("settings.default_rate_limit.window", f"1 minute to {convert.MAX_SPAN.days} days")
    if s.HasField("default_dedupe_window") and not _span(s.default_dedupe_window) <= convert.MAX_SPAN:
        v.add("settings.default_dedupe_window", f"0 to {convert.MAX_SPAN.days} days")
    seen = set()
    for i, p in enumerate(s.category_policies):
        if not p.category:
            v.add(f"settings.category_policies[{i}].category", "required")
        if p.category in seen:
            v.add(f"settings.category_policies[{i}].category", "listed twice")
        seen.add(p.category)
        if p.HasField("dedupe_window") and not _span(p.dedupe_window) <= convert.MAX_SPAN:
            v.add(f"settings.category_policies[{i}].dedupe_window", f"0 to {convert.MAX_SPAN.days} days")
    v.raise_if_any("invalid notify settings")
