"""Tenant policies: six typed, versioned documents per tenant in kit's settings store, with their defaults.

`TenantPolicies.load(uow)` reads them once per unit of work (every use case of one request shares it)
and holds both the proto documents and their domain views.

Documents are also kept in the process, keyed by tenant and version: a unit of work asks only for
the versions of the tenant's documents (one query) and loads the body of a document only when its
version moved (saved here or by another replica), so intake reads one row instead of five bodies.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from kit.calendar import BusinessCalendar, calendar_from_env
from kit.errors import InvalidArgument, Violations
from kit.resources import TenantSettings, UnitOfWork, merge_update
from kit.resources.masks import OUTPUT_ONLY, behaviors
from salesops.common.v1.types_pb2 import Money
from salesops.leads.v1 import enums_pb2, policies_pb2
from services.leads import policy_rules, store
from services.leads.convert import enum_value
from services.leads.domain import grading, pool, routing, sla
from services.leads.repositories.policy_versions import policy_versions

GRADING, ROUTING, POOL, SLA, INTAKE, FOLLOW_UP = "grading", "routing", "pool", "sla", "intake", "follow_up"

TYPES: dict[str, type[Message]] = {
    GRADING: policies_pb2.GradingRules,
    ROUTING: policies_pb2.RoutingRules,
    POOL: policies_pb2.PoolRules,
    SLA: policies_pb2.SlaPolicies,
    INTAKE: policies_pb2.IntakePolicy,
    FOLLOW_UP: policies_pb2.FollowUpPolicy,
}

# The tenants' business calendar (SALESOPS_BUSINESS_CALENDAR; default Asia/Shanghai,
# Mon-Fri 09:00-18:00, CN holidays and make-up days). Per-tenant calendars are not built yet.
CALENDAR: BusinessCalendar = calendar_from_env()


def _grading_default() -> policies_pb2.GradingRules:
    msg = policies_pb2.GradingRules(grade_a_min_score=70, grade_b_min_score=40)
    rules = grading.default_rules()
    msg.completeness_fields.extend(rules.completeness_fields)
    cny = "CNY"
    msg.rules.add(
        rule_id="budget-large", display_name="Budget >= 300,000 CNY", enabled=True, points=40
    ).conditions.add(
        budget=policies_pb2.BudgetCondition(min_budget=Money(amount_minor=30_000_000, currency=cny))
    )
    msg.rules.add(rule_id="budget-any", display_name="Budget stated", enabled=True, points=15).conditions.add(
        budget=policies_pb2.BudgetCondition(min_budget=Money(amount_minor=100, currency=cny))
    )
    beh = msg.rules.add(
        rule_id="pricing-interest", display_name="Viewed pricing twice in 7 days", enabled=True, points=25
    )
    cond = beh.conditions.add().behavior
    cond.event_type, cond.min_count = "pricing_page_view", 2
    cond.within.FromTimedelta(timedelta(days=7))
    msg.rules.add(
        rule_id="call-center", display_name="Came through the call centre", enabled=True, points=15
    ).conditions.add(source=policies_pb2.SourceCondition(channels=[enums_pb2.LEAD_CHANNEL_CALL_CENTER]))
    msg.rules.add(
        rule_id="complete-form", display_name="Form at least 80 % complete", enabled=True, points=10
    ).conditions.add(completeness=policies_pb2.CompletenessCondition(min_percent=80))
    return msg


def _sla_default() -> policies_pb2.SlaPolicies:
    msg = policies_pb2.SlaPolicies(attention_after_days=3)
    for p in sla.default_policies().policies:
        item = msg.policies.add(
            grade=enum_value(enums_pb2.LeadGrade, p.grade),
            enabled=p.enabled,
            escalate_on_breach=p.escalate,
            breach_action=enum_value(enums_pb2.SlaBreachAction, p.breach_action),
            max_reassignments=p.max_reassignments,
            restart_on_reassign=p.restart_on_reassign,
        )
        item.response_window.FromTimedelta(p.window)
        item.reminder_before.FromTimedelta(p.reminder_before)
        item.qualifying_activity_types.extend(
            enum_value(enums_pb2.ActivityType, t) for t in p.qualifying_types
        )
    return msg


def _pool_default() -> policies_pb2.PoolRules:
    msg = policies_pb2.PoolRules()
    for p in pool.default_pools():
        item = msg.pools.add(
            pool_id=p.pool_id,
            display_name=p.display_name,
            region=p.region,
            private_lead_cap=p.private_lead_cap,
            daily_claim_cap=p.daily_claim_cap,
            reclaim_cooldown_days=p.reclaim_cooldown_days,
        )
        for r in p.recycle_rules:
            item.recycle_rules.add(
                grade=enum_value(enums_pb2.LeadGrade, r.grade),
                enabled=r.enabled,
                recycle_after_days=r.recycle_after_days,
                warn_before_days=r.warn_before_days,
            )
    return msg


def default(kind: str) -> Message:
    if kind == GRADING:
        return _grading_default()
    if kind == SLA:
        return _sla_default()
    if kind == POOL:
        return _pool_default()
    if kind == ROUTING:
        return policies_pb2.RoutingRules(fallback_pool_id="fallback")
    if kind == INTAKE:
        return policies_pb2.IntakePolicy(
            default_phone_region="CN",
            exact_match_action=policies_pb2.DEDUPE_ACTION_MERGE,
            company_similarity_threshold=0.85,
        )
    return policies_pb2.FollowUpPolicy(max_check_in_distance_m=1000)


STORES: dict[str, TenantSettings[Any]] = {
    kind: TenantSettings(TYPES[kind], default(kind), tables=store.settings) for kind in TYPES
}
_CACHE = "leads.policies"
_VERSIONS, _SAVED = "_versions", "_saved"
# Per database (its connection pool), (tenant, kind) -> (version, document); read-only here,
# callers always get copies. Keyed by pool so two databases in one process never share versions.
_PROCESS: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], tuple[int, Message]]] = (
    weakref.WeakKeyDictionary()
)
_PROCESS_MAX = 6 * 2000  # documents of 2,000 tenants; beyond, start over rather than grow unbounded


def _shared(uow: UnitOfWork) -> dict[tuple[str, str], tuple[int, Message]]:
    pool = uow.session.get_bind().engine.pool
    found = _PROCESS.get(pool)
    if found is None:
        found = _PROCESS[pool] = {}
    return found


def _cache(uow: UnitOfWork) -> dict[str, Any]:
    cache: dict[str, Any] = uow.session.info.setdefault(_CACHE, {})
    return cache


# Reads that only show policy-derived figures (GetLead's recycle schedule) may use versions seen
# this long ago by this process instead of asking the database on every call; a save in this
# process forgets them at once, one elsewhere is seen within this bound.
READ_STALENESS_S = 1.0
_SEEN: weakref.WeakKeyDictionary[Any, dict[str, tuple[float, dict[str, int]]]] = weakref.WeakKeyDictionary()


def _seen(uow: UnitOfWork) -> dict[str, tuple[float, dict[str, int]]]:
    pool = uow.session.get_bind().engine.pool
    found = _SEEN.get(pool)
    if found is None:
        found = _SEEN[pool] = {}
    return found


# The version reads in flight for `recent` readers, by (process cache, tenant): when the versions
# seen go stale under many reads in flight, the ones arriving meanwhile wait for that read's answer
# (read after they arrived) instead of each asking again (64 in flight asked up to 64 times).
_READING: dict[tuple[int, str], asyncio.Future[dict[str, int]]] = {}


async def _versions(uow: UnitOfWork, recent: bool) -> dict[str, int]:
    """The tenant's document versions: read now, or (`recent`) as seen at most READ_STALENESS_S ago."""
    seen, at = _seen(uow), time.monotonic()
    if not recent:
        return _remember(seen, uow.tenant, at, await policy_versions(uow))
    hit = seen.get(uow.tenant)
    if hit is not None and at - hit[0] < READ_STALENESS_S:
        return hit[1]
    key = (id(seen), uow.tenant)
    reading = _READING.get(key)
    if reading is not None:
        try:
            return await asyncio.shield(reading)
        except asyncio.CancelledError:
            if not reading.cancelled():  # this caller was cancelled, not the read
                raise
        except Exception:  # that read failed: this caller reads for itself below
            pass
        return _remember(seen, uow.tenant, at, await policy_versions(uow))
    reading = _READING[key] = asyncio.get_running_loop().create_future()
    try:
        versions = _remember(seen, uow.tenant, at, await policy_versions(uow))
    except BaseException as exc:
        if isinstance(exc, Exception):
            reading.set_exception(exc)
            reading.exception()  # retrieved: a read nobody waited for is not an unhandled error
        else:
            reading.cancel()
        raise
    else:
        reading.set_result(versions)
        return versions
    finally:
        _READING.pop(key, None)


def _remember(
    seen: dict[str, tuple[float, dict[str, int]]], tenant: str, at: float, versions: dict[str, int]
) -> dict[str, int]:
    if len(seen) >= _PROCESS_MAX:
        seen.clear()
    seen[tenant] = (at, versions)
    return versions


async def load(uow: UnitOfWork, kind: str, *, recent: bool = False) -> Any:
    """The tenant's document of `kind` (defaults until first saved), with version, etag and audit.

    Read once per unit of work; callers get a copy they may change. `recent`: a read-only caller
    that may see a document up to READ_STALENESS_S old (no version query when seen that recently)."""
    cache = _cache(uow)
    if kind not in cache:
        versions = cache.get(_VERSIONS)
        if versions is None:
            versions = cache[_VERSIONS] = await _versions(uow, recent and not cache.get(_SAVED))
        version = versions.get(STORES[kind].document, 0)
        shared = _shared(uow)
        hit = shared.get((uow.tenant, kind))
        if hit is not None and hit[0] == version:
            cache[kind] = hit[1]
        else:
            stored = await STORES[kind].load(uow)
            msg = stored.value
            msg.version = stored.version
            if stored.updated_at is not None:
                msg.audit.update_time.FromDatetime(stored.updated_at.replace(tzinfo=None))
                msg.audit.updated_by = stored.updated_by
            cache[kind] = msg
            if not cache.get(_SAVED):  # a version saved here may yet roll back: never shared
                if len(shared) >= _PROCESS_MAX:
                    shared.clear()
                shared[(uow.tenant, kind)] = (stored.version, msg)
    copy = TYPES[kind]()
    copy.CopyFrom(cache[kind])
    return copy


def versions_seen(uow: UnitOfWork) -> dict[str, int] | None:
    """The document versions this unit of work has read (None: none read yet)."""
    found: dict[str, int] | None = _cache(uow).get(_VERSIONS)
    return found


def assume_versions(uow: UnitOfWork, versions: dict[str, int]) -> None:
    """Use the versions a read-only unit of work of the same request has just seen, instead of
    asking again (SQLite's intake reads them beside the writer): the request is decided on the
    policies as they were a moment before its write, as if it had arrived before a save made since."""
    _cache(uow).setdefault(_VERSIONS, dict(versions))


def _validate(kind: str, msg: Any) -> None:
    v = Violations()
    name = {GRADING: "grading_rules", ROUTING: "routing_rules", POOL: "pool_rules", SLA: "sla_policies"}.get(
        kind, kind
    )
    if kind in (GRADING, ROUTING):
        seen: set[str] = set()
        for i, rule in enumerate(msg.rules):
            if not rule.rule_id:
                v.add(f"{name}.rules[{i}].rule_id", "required")
            elif rule.rule_id in seen:
                v.add(f"{name}.rules[{i}].rule_id", f"duplicate id {rule.rule_id!r}")
            seen.add(rule.rule_id)
            if kind == ROUTING:
                if not rule.team_path:
                    v.add(f"{name}.rules[{i}].team_path", "required")
                if not rule.strategy:
                    v.add(f"{name}.rules[{i}].strategy", "required")
    if kind == GRADING and msg.grade_a_min_score < msg.grade_b_min_score:
        v.add(f"{name}.grade_a_min_score", "must be >= grade_b_min_score")
    if kind == POOL:
        ids = [p.pool_id for p in msg.pools]
        if "default" not in ids:
            v.add(f"{name}.pools", 'the tenant-wide pool "default" is required')
        for i, p in enumerate(msg.pools):
            if not p.pool_id:
                v.add(f"{name}.pools[{i}].pool_id", "required")
            if min(p.private_lead_cap, p.daily_claim_cap, p.reclaim_cooldown_days) < 0:
                v.add(f"{name}.pools[{i}]", "caps and cooldown must be >= 0")
    if kind == SLA:
        for i, p in enumerate(msg.policies):
            if not p.grade:
                v.add(f"{name}.policies[{i}].grade", "required")
            if p.enabled and p.response_window.ToTimedelta() <= timedelta(0):
                v.add(f"{name}.policies[{i}].response_window", "must be positive")
    if kind == INTAKE and not 0 <= msg.company_similarity_threshold <= 1:
        v.add("intake_policy.company_similarity_threshold", "must be in [0, 1]")
    v.raise_if_any(f"invalid {name}")


def validate(kind: str, msg: Any) -> None:
    """INVALID_ARGUMENT with BadRequest violations when `msg` could not be saved (a draft, e.g. simulated)."""
    _validate(kind, msg)


def _check_paths(kind: str, msg: Any, paths: list[str]) -> None:
    if not paths:
        raise InvalidArgument.field("update_mask", "name the fields to replace")
    fields = msg.DESCRIPTOR.fields_by_name
    for path in paths:
        field = fields.get(path.split(".")[0])
        if field is None or field.name == "etag" or OUTPUT_ONLY in behaviors(field):
            raise InvalidArgument.field("update_mask", f"unknown or output-only field {path!r}")


async def save(uow: UnitOfWork, kind: str, msg: Any, paths: list[str], actor: str) -> Any:
    """Replace the fields in `paths` (whole lists); the etag must match the stored version when given."""
    _check_paths(kind, msg, paths)
    current = await load(uow, kind)
    top = sorted({p.split(".")[0] for p in paths})
    merged = merge_update(current, msg, FieldMask(paths=top))
    _validate(kind, merged)
    for name in ("version", "audit"):
        merged.ClearField(name)
    await STORES[kind].put(uow, merged, msg.etag, actor)
    cache = _cache(uow)
    for key in (kind, _VERSIONS, "_tenant_policies"):
        cache.pop(key, None)  # the next load sees the new version, in this transaction
    cache[_SAVED] = True
    _seen(uow).pop(uow.tenant, None)
    return await load(uow, kind)


@dataclass
class TenantPolicies:
    """What an ownership change, an intake or a watch needs of the tenant's policies."""

    pools: tuple[pool.Pool, ...]
    sla: sla.Policies
    routing_msg: policies_pb2.RoutingRules
    routing: list[routing.Rule]

    @classmethod
    async def load(cls, uow: UnitOfWork, *, recent: bool = False) -> TenantPolicies:
        """`recent`: for read-only answers, see `load`. The built views are shared by the process
        per tenant and document versions, so a read builds nothing when no version moved."""
        cache = _cache(uow)
        found = cache.get("_tenant_policies")
        if found is None and not cache.get(_SAVED):
            # Built already for these versions: no document is copied to learn them.
            versions = cache.get(_VERSIONS)
            if versions is None:
                versions = cache[_VERSIONS] = await _versions(uow, recent)
            key = (uow.tenant, *(versions.get(STORES[k].document, 0) for k in (ROUTING, POOL, SLA)))
            found = _shared_views(uow).get(key)  # type: ignore[arg-type]
            if found is not None:
                cache["_tenant_policies"] = found
        if found is None:
            routing_msg = await load(uow, ROUTING, recent=recent)
            pool_msg, sla_msg = await load(uow, POOL, recent=recent), await load(uow, SLA, recent=recent)
            key = (uow.tenant, routing_msg.version, pool_msg.version, sla_msg.version)
            shared = _shared_views(uow)
            found = shared.get(key) if not cache.get(_SAVED) else None
            if found is None:
                found = cls(
                    policy_rules.pools(pool_msg),
                    policy_rules.sla_policies(sla_msg),
                    routing_msg,
                    policy_rules.routing_rules(routing_msg),
                )
                if not cache.get(_SAVED):
                    if len(shared) >= _PROCESS_MAX:
                        shared.clear()
                    shared[key] = found
            cache["_tenant_policies"] = found
        return found  # type: ignore[no-any-return]


# Per database, (tenant, routing, pool, sla versions) -> the built TenantPolicies (treated as read-only).
_VIEWS: weakref.WeakKeyDictionary[Any, dict[tuple[str, int, int, int], TenantPolicies]] = (
    weakref.WeakKeyDictionary()
)


def _shared_views(uow: UnitOfWork) -> dict[tuple[str, int, int, int], TenantPolicies]:
    pool = uow.session.get_bind().engine.pool
    found = _VIEWS.get(pool)
    if found is None:
        found = _VIEWS[pool] = {}
    return found


async def grading_rules(uow: UnitOfWork) -> grading.Rules:
    return policy_rules.grading_rules(await load(uow, GRADING))
