"""Rep routing profiles: the stored profile, its routing view, its live presentation, and UpdateRepProfile."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import inspect

from kit.auth import Principal
from kit.calendar import BusinessCalendar, weekly_hours
from kit.errors import InvalidArgument, PermissionDenied
from kit.resources import UnitOfWork, merge_update
from salesops.leads.v1 import routing_pb2
from services.leads import access, policies, validation
from services.leads.convert import aware, enum_value, now, parse, to_dict, ts
from services.leads.domain import routing
from services.leads.repositories.reps import RepRepository
from services.leads.store import RepRow

# What a rep may change of their own profile; the rest is their managers'.
SELF_SERVICE = frozenset({"leaves", "accepting_leads"})
# Kept in columns (or made by the server), never in the body.
NOT_IN_BODY = ("user_id", "team_path", "etag", "audit", "last_assigned_time")


def profile(row: RepRow) -> routing_pb2.RepProfile:
    msg = routing_pb2.RepProfile()
    parse(row.body or {}, msg)
    msg.user_id = row.user_id
    msg.team_path = row.team_path
    msg.etag = str(row.version)
    if row.last_assigned_time:
        msg.last_assigned_time.CopyFrom(ts(row.last_assigned_time))
    return msg


def _calendar(p: routing_pb2.RepProfile) -> BusinessCalendar | None:
    wh = p.working_hours
    if not wh.windows:
        return None
    days: dict[int | str, list[str]] = {}
    for w in wh.windows:
        start = f"{w.start_time.hours:02d}:{w.start_time.minutes:02d}"
        end = "24:00" if w.end_time.hours >= 24 else f"{w.end_time.hours:02d}:{w.end_time.minutes:02d}"
        days.setdefault(w.day - 1, []).append(f"{start}-{end}")  # google.type.DayOfWeek: MONDAY = 1
    return BusinessCalendar(
        timezone=wh.time_zone or policies.CALENDAR.timezone,
        weekly_hours=weekly_hours(days),
        use_cn_holidays=wh.follow_business_calendar,
    )


def _routing_view(row: RepRow) -> routing.Rep:
    """The profile's part of a rep's routing view (its own capacity, 0 when it sets none)."""
    p = profile(row)
    return routing.Rep(
        user_id=row.user_id,
        team_path=row.team_path,
        display_name=p.display_name,
        accepting=p.accepting_leads,
        capacity=p.capacity or p.private_lead_cap,
        weight=p.weight or 1,
        skills=frozenset(p.skills),
        languages=frozenset(p.language_codes),
        leaves=tuple(
            (lv.start_time.ToDatetime(tzinfo=UTC), lv.end_time.ToDatetime(tzinfo=UTC)) for lv in p.leaves
        ),
        calendar=_calendar(p),
        supervisor_user_id=p.supervisor_user_id,
    )


# Routing views of profiles, per database (its connection pool), by (tenant, user) with the
# profile's version and team: routing reads a team's rows, but parses a body only when it changed.
_VIEWS: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], tuple[int, str, routing.Rep]]] = (
    weakref.WeakKeyDictionary()
)
_VIEWS_MAX = 50_000


def _cached_view(row: RepRow) -> routing.Rep:
    state = inspect(row)
    bind = state.session.get_bind() if state.session is not None else None
    if bind is None:
        return _routing_view(row)
    pool = bind.engine.pool
    views = _VIEWS.get(pool)
    if views is None:
        views = _VIEWS[pool] = {}
    key = (row.tenant_id, row.user_id)
    hit = views.get(key)
    if hit is not None and hit[0] == row.version and hit[1] == row.team_path:
        return hit[2]
    if len(views) >= _VIEWS_MAX:
        views.clear()
    view = _routing_view(row)
    views[key] = (row.version, row.team_path, view)
    return view


def rep_for_routing(row: RepRow, open_leads: int, pool_cap: int) -> routing.Rep:
    """The rep as routing sees them: the profile (parsed once per version) with their live figures."""
    b = _cached_view(row)
    return routing.Rep(  # positional, in field order: 2,000 of these per decision in a large team
        b.user_id,
        b.team_path,
        b.display_name,
        b.accepting,
        b.capacity or pool_cap,
        b.weight,
        b.skills,
        b.languages,
        open_leads,
        b.leaves,
        b.calendar,
        aware(row.last_assigned_time),
        b.supervisor_user_id,
    )


@dataclass(frozen=True)
class LiveRep:
    """A profile row with its live load: what the presenter shows."""

    row: RepRow
    open_count: int


class RepProfilePresenter:
    """The one place deciding what a rep profile shows (live load and availability included)."""

    def present(self, viewer: Principal, item: LiveRep, at: datetime | None = None) -> routing_pb2.RepProfile:
        p = profile(item.row)
        p.open_lead_count = item.open_count
        cap = p.capacity or p.private_lead_cap
        p.load_ratio = item.open_count / cap if cap else 0.0
        rep = rep_for_routing(item.row, item.open_count, 0)
        reasons = routing.skip_reasons(
            rep,
            routing.Rule("live", item.row.team_path, routing.LEAST_LOADED),
            routing.LeadFacts(""),
            at or now(),
            policies.CALENDAR,
            {},
        )
        p.available_now = not reasons
        p.unavailable_reasons.extend(enum_value(routing_pb2.CandidateSkipReason, r) for r in reasons)
        return p


PRESENTER = RepProfilePresenter()


def require_in_scope(who: Principal, user_id: str, team_path: str) -> None:
    """Reps read their own unit's profiles, managers their org, admins all (org scope)."""
    if user_id == who.user_id or access.in_scope(who, team_path):
        return
    raise PermissionDenied(f"rep profile {user_id} is outside your org scope", reason="OUT_OF_SCOPE")


async def live(uow: UnitOfWork, rows: list[RepRow]) -> list[LiveRep]:
    counts = await RepRepository(uow).open_counts([r.user_id for r in rows])
    return [LiveRep(r, counts.get(r.user_id, 0)) for r in rows]


MAX_CAPACITY = 10_000
MAX_PROFILE_LIST = 100


def _check_update(who: Principal, msg: routing_pb2.RepProfile, paths: list[str]) -> None:
    if not msg.user_id:
        raise InvalidArgument.field("rep_profile.user_id", "required")
    if not paths:
        raise InvalidArgument.field("update_mask", "name the fields to change")
    own = msg.user_id == who.user_id
    rep_only = not (who.is_admin or who.has_role("supervisor", "director"))
    if rep_only and (not own or any(p not in SELF_SERVICE for p in paths)):
        raise PermissionDenied(
            "reps may change only their own leaves and accepting switch", reason="NOT_MANAGER"
        )
    allowed = {f.name for f in routing_pb2.RepProfile.DESCRIPTOR.fields if f.number < 20} - {"user_id"}
    for p in paths:
        if p.split(".")[0] not in allowed:
            raise InvalidArgument.field("update_mask", f"unknown or output-only field {p!r}")
    if msg.weight and not 1 <= msg.weight <= 100:
        raise InvalidArgument.field("rep_profile.weight", "1 to 100")
    # Bounded like the columns and the routing arithmetic: a negative capacity or a 100,000-leave
    # profile (reps write their own leaves) is a 400, not a skewed router or a huge row.
    for name in ("capacity", "private_lead_cap"):
        if not 0 <= getattr(msg, name) <= MAX_CAPACITY:
            raise InvalidArgument.field(f"rep_profile.{name}", f"0 to {MAX_CAPACITY}")
    if len(msg.user_id) > 64 or len(msg.team_path) > 200:
        field = "user_id" if len(msg.user_id) > 64 else "team_path"
        raise InvalidArgument.field(
            f"rep_profile.{field}", "too long (user ids 64, team paths 200 characters)"
        )
    validation.bounded_lists(msg, "rep_profile", limit=MAX_PROFILE_LIST)
    if msg.ByteSize() > validation.MAX_MESSAGE_BYTES:
        raise InvalidArgument.field("rep_profile", f"at most {validation.MAX_MESSAGE_BYTES // 1024} KB")


async def update_rep_profile(
    uow: UnitOfWork,
    who: Principal,
    msg: routing_pb2.RepProfile,
    paths: list[str],
    *,
    allow_missing: bool,
    at: datetime,
) -> LiveRep:
    _check_update(who, msg, paths)
    reps = RepRepository(uow)
    row = await reps.find(msg.user_id)
    if row is None:
        if not allow_missing:
            await reps.get(msg.user_id)  # NOT_FOUND with ResourceInfo
        current = routing_pb2.RepProfile(user_id=msg.user_id, accepting_leads=True, weight=1)
    else:
        reps.check_etag(row, msg.etag)
        current = profile(row)
    merged = merge_update(current, msg, FieldMask(paths=sorted({p.split(".")[0] for p in paths})))
    team = merged.team_path
    if not who.is_admin:
        # Both ends of a move count: a supervisor may neither pull another team's rep into theirs
        # nor push one of theirs into a team they do not manage. Reps change only their own switches.
        own = msg.user_id == who.user_id
        teams = {team} | ({row.team_path} if row is not None else set())
        if not (own and team == (row.team_path if row is not None else team)) and not all(
            t and access.manages(who, t) for t in teams
        ):
            raise PermissionDenied(f"{msg.user_id} is not in a team you manage", reason="NOT_MANAGER")
    body = to_dict(merged)
    for k in NOT_IN_BODY:
        body.pop(k, None)
    saved = await reps.add_or_update(row, msg.user_id, {"team_path": team, "body": body, "updated_at": at})
    return LiveRep(saved, await reps.open_count(msg.user_id))
