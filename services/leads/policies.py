"""Tenant policies: stored as proto JSON (one row per kind), defaults for new tenants, domain views."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.calendar import BusinessCalendar, calendar_from_env
from kit.errors import Aborted, InvalidArgument, Violations
from salesops.common.v1.types_pb2 import Money
from salesops.leads.v1 import enums_pb2, policies_pb2
from services.leads.convert import long, now, parse, short, to_dict
from services.leads.domain import grading, pool, routing, sla
from services.leads.store import SettingRow

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
            grade=long(enums_pb2.LeadGrade, p.grade),
            enabled=p.enabled,
            escalate_on_breach=p.escalate,
            breach_action=long(enums_pb2.SlaBreachAction, p.breach_action),
            max_reassignments=p.max_reassignments,
            restart_on_reassign=p.restart_on_reassign,
        )
        item.response_window.FromTimedelta(p.window)
        item.reminder_before.FromTimedelta(p.reminder_before)
        item.qualifying_activity_types.extend(long(enums_pb2.ActivityType, t) for t in p.qualifying_types)
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
                grade=long(enums_pb2.LeadGrade, r.grade),
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


_CACHE = "leads.settings"


async def _row(session: AsyncSession, kind: str) -> SettingRow | None:
    """All of the tenant's setting rows are read once per session (one query instead of five)."""
    cache: dict[str, SettingRow] | None = session.info.get(_CACHE)
    if cache is None:
        cache = {r.kind: r for r in (await session.execute(select(SettingRow))).scalars()}
        session.info[_CACHE] = cache
    return cache.get(kind)


async def load(session: AsyncSession, kind: str) -> Any:
    row = await _row(session, kind)
    if row is None:
        msg = default(kind)
        version = 0
    else:
        msg = TYPES[kind]()
        parse(row.body, msg)
        version = row.version
    msg.version = version  # type: ignore[attr-defined]
    msg.etag = str(version)  # type: ignore[attr-defined]
    if row is not None:
        msg.audit.update_time.FromDatetime(row.updated_at.replace(tzinfo=None))  # type: ignore[attr-defined]
        msg.audit.updated_by = row.updated_by  # type: ignore[attr-defined]
    return msg


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


async def save(session: AsyncSession, kind: str, msg: Any, paths: list[str], actor: str) -> Any:
    """Replace the fields in `paths` (whole lists); the etag must match the stored version when given."""
    current = await load(session, kind)
    if msg.etag and msg.etag != current.etag:
        raise Aborted(f"{kind} settings changed meanwhile (etag {current.etag}, sent {msg.etag})")
    fields = {f.name for f in current.DESCRIPTOR.fields} - {"version", "etag", "audit"}
    if not paths:
        raise InvalidArgument.field("update_mask", "name the fields to replace")
    for path in paths:
        top = path.split(".")[0]
        if top not in fields:
            raise InvalidArgument.field("update_mask", f"unknown or output-only field {path!r}")
        current.ClearField(top)
        if current.DESCRIPTOR.fields_by_name[top].is_repeated:
            getattr(current, top).extend(getattr(msg, top))
        elif current.DESCRIPTOR.fields_by_name[top].message_type is not None:
            getattr(current, top).CopyFrom(getattr(msg, top))
        else:
            setattr(current, top, getattr(msg, top))
    _validate(kind, current)
    row = await _row(session, kind)
    body = to_dict(current)
    for k in ("version", "etag", "audit"):
        body.pop(k, None)
    if row is None:
        row = SettingRow(kind=kind, body=body, version=1, updated_by=actor, updated_at=now())
        session.add(row)
        session.info[_CACHE][kind] = row
    else:
        row.body, row.version, row.updated_by, row.updated_at = body, row.version + 1, actor, now()
    await session.flush()
    return await load(session, kind)


# --- domain views -----------------------------------------------------------------


def grading_rules(msg: policies_pb2.GradingRules) -> grading.Rules:
    rules: list[grading.Rule] = []
    for r in msg.rules:
        conds: list[grading.Condition] = []
        for c in r.conditions:
            which = c.WhichOneof("condition")
            if which == "source":
                conds.append(
                    grading.SourceCond(
                        tuple(short(enums_pb2.LeadChannel, x) for x in c.source.channels),
                        tuple(c.source.source_codes),
                    )
                )
            elif which == "field":
                op = policies_pb2.FieldOperator.Name(c.field.operator).removeprefix("FIELD_OPERATOR_")
                conds.append(grading.FieldCond(c.field.field_path, op, tuple(c.field.values)))
            elif which == "behavior":
                within = c.behavior.within.ToTimedelta() if c.behavior.HasField("within") else None
                conds.append(grading.BehaviorCond(c.behavior.event_type, c.behavior.min_count or 1, within))
            elif which == "completeness":
                conds.append(grading.CompletenessCond(c.completeness.min_percent))
            elif which == "budget":
                b = c.budget
                currency = b.min_budget.currency or b.max_budget.currency or "CNY"
                conds.append(
                    grading.BudgetCond(
                        currency,
                        b.min_budget.amount_minor / 100 if b.HasField("min_budget") else None,
                        b.max_budget.amount_minor / 100 if b.HasField("max_budget") else None,
                    )
                )
        rules.append(grading.Rule(r.rule_id, r.display_name, r.points, tuple(conds), r.enabled))
    return grading.Rules(
        tuple(rules),
        msg.grade_a_min_score,
        msg.grade_b_min_score,
        tuple(msg.completeness_fields),
        msg.version,
    )


def routing_rules(msg: policies_pb2.RoutingRules) -> list[routing.Rule]:
    return [
        routing.Rule(
            rule_id=r.rule_id,
            team_path=r.team_path,
            strategy=short(enums_pb2.RoutingStrategy, r.strategy),
            display_name=r.display_name,
            enabled=r.enabled,
            regions=tuple(r.match.regions),
            product_lines=tuple(r.match.product_lines),
            channels=tuple(short(enums_pb2.LeadChannel, c) for c in r.match.channels),
            source_codes=tuple(r.match.source_codes),
            grades=tuple(short(enums_pb2.LeadGrade, g) for g in r.match.grades),
            language_codes=tuple(r.match.language_codes),
            include_sub_teams=r.include_sub_teams,
            required_skills=tuple(r.required_skills),
            match_language=r.match_language,
            allow_outside_working_hours=r.allow_outside_working_hours,
            pool_id=r.pool_id,
        )
        for r in msg.rules
    ]


def pools(msg: policies_pb2.PoolRules) -> tuple[pool.Pool, ...]:
    return tuple(
        pool.Pool(
            p.pool_id,
            p.display_name,
            p.region,
            p.private_lead_cap,
            p.daily_claim_cap,
            p.reclaim_cooldown_days,
            tuple(
                pool.RecycleRule(
                    short(enums_pb2.LeadGrade, r.grade), r.enabled, r.recycle_after_days, r.warn_before_days
                )
                for r in p.recycle_rules
            ),
        )
        for p in msg.pools
    )


def sla_policies(msg: policies_pb2.SlaPolicies) -> sla.Policies:
    return sla.Policies(
        tuple(
            sla.Policy(
                grade=short(enums_pb2.LeadGrade, p.grade),
                enabled=p.enabled,
                window=p.response_window.ToTimedelta(),
                reminder_before=p.reminder_before.ToTimedelta()
                if p.HasField("reminder_before")
                else timedelta(minutes=30),
                qualifying_types=tuple(short(enums_pb2.ActivityType, t) for t in p.qualifying_activity_types),
                qualifying_outcomes=tuple(short(enums_pb2.ActivityOutcome, o) for o in p.qualifying_outcomes),
                escalate=p.escalate_on_breach,
                breach_action=short(enums_pb2.SlaBreachAction, p.breach_action) or sla.NONE,
                max_reassignments=p.max_reassignments,
                restart_on_reassign=p.restart_on_reassign,
            )
            for p in msg.policies
        ),
        msg.attention_after_days,
        msg.version,
    )


async def all_rows(session: AsyncSession) -> list[SettingRow]:
    return list((await session.execute(select(SettingRow))).scalars())
