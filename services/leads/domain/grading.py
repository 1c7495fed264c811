"""Grading: tenant rules -> score -> A / B / C, with the rules that fired and why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

A, B, C = "A", "B", "C"


@dataclass(frozen=True)
class SourceCond:
    channels: tuple[str, ...] = ()
    source_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldCond:
    path: str
    op: str  # EQUALS NOT_EQUALS IN CONTAINS GREATER_OR_EQUAL LESS_OR_EQUAL PRESENT ABSENT
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class BehaviorCond:
    event_type: str
    min_count: int = 1
    within: timedelta | None = None


@dataclass(frozen=True)
class CompletenessCond:
    min_percent: int


@dataclass(frozen=True)
class BudgetCond:
    currency: str
    min_units: float | None = None
    max_units: float | None = None


Condition = SourceCond | FieldCond | BehaviorCond | CompletenessCond | BudgetCond


@dataclass(frozen=True)
class Rule:
    rule_id: str
    display_name: str
    points: int
    conditions: tuple[Condition, ...] = ()
    enabled: bool = True


@dataclass(frozen=True)
class Rules:
    rules: tuple[Rule, ...] = ()
    a_min: int = 70
    b_min: int = 40
    completeness_fields: tuple[str, ...] = ()
    version: int = 0


@dataclass(frozen=True)
class Behavior:
    event_type: str
    occur_time: datetime


@dataclass
class LeadFacts:
    """What grading looks at: flattened lead fields ("company.industry", "attributes.x"), source, budget."""

    fields: Mapping[str, Any]
    channel: str = ""
    source_code: str = ""
    budget_currency: str = ""
    budget_units: float | None = None
    behaviors: Sequence[Behavior] = field(default_factory=tuple)


@dataclass(frozen=True)
class Fired:
    rule_id: str
    display_name: str
    points: int
    explanation: str


@dataclass(frozen=True)
class Result:
    score: int
    grade: str
    fired: tuple[Fired, ...]
    completeness: int
    version: int


def _present(value: Any) -> bool:
    return value not in (None, "", [], (), {}) and value != 0


def completeness(facts: LeadFacts, fields_: Sequence[str]) -> int:
    if not fields_:
        return 100
    filled = sum(1 for f in fields_ if _present(facts.fields.get(f)))
    return round(100 * filled / len(fields_))


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _field(cond: FieldCond, facts: LeadFacts) -> tuple[bool, str]:
    value = facts.fields.get(cond.path)
    first = cond.values[0] if cond.values else ""
    values = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    shown = "" if value is None else (",".join(values) if isinstance(value, list | tuple) else str(value))
    if cond.op == "PRESENT":
        return _present(value), f"{cond.path} present"
    if cond.op == "ABSENT":
        return not _present(value), f"{cond.path} absent"
    if value is None:
        return False, f"{cond.path} unset"
    if cond.op == "EQUALS":
        return first in values, f"{cond.path} = {shown}"
    if cond.op == "NOT_EQUALS":
        return first not in values, f"{cond.path} = {shown} != {first}"
    if cond.op == "IN":
        return any(v in cond.values for v in values), f"{cond.path} {shown} in {list(cond.values)}"
    if cond.op == "CONTAINS":
        return first.lower() in shown.lower(), f"{cond.path} contains {first!r}"
    have, want = _num(value), _num(first)
    if have is None or want is None:
        return False, f"{cond.path} {shown} not a number"
    if cond.op == "GREATER_OR_EQUAL":
        return have >= want, f"{cond.path} {shown} >= {first}"
    if cond.op == "LESS_OR_EQUAL":
        return have <= want, f"{cond.path} {shown} <= {first}"
    return False, f"unknown operator {cond.op}"


def _holds(cond: Condition, facts: LeadFacts, now: datetime, percent: int) -> tuple[bool, str]:
    if isinstance(cond, SourceCond):
        ok = (not cond.channels or facts.channel in cond.channels) and (
            not cond.source_codes or facts.source_code in cond.source_codes
        )
        return ok, f"source {facts.channel}/{facts.source_code}"
    if isinstance(cond, FieldCond):
        return _field(cond, facts)
    if isinstance(cond, BehaviorCond):
        since = now - cond.within if cond.within else None
        n = sum(
            1
            for b in facts.behaviors
            if b.event_type == cond.event_type and (since is None or b.occur_time >= since)
        )
        return n >= max(cond.min_count, 1), f"{n} x {cond.event_type}"
    if isinstance(cond, CompletenessCond):
        return percent >= cond.min_percent, f"form {percent}% >= {cond.min_percent}%"
    # Budget: never holds without a stated budget or in another currency.
    units = facts.budget_units
    if units is None or facts.budget_currency != cond.currency:
        return False, "no budget in " + cond.currency
    ok = (cond.min_units is None or units >= cond.min_units) and (
        cond.max_units is None or units <= cond.max_units
    )
    return ok, f"budget {units:,.0f} {cond.currency}"


def grade_of(score: int, rules: Rules) -> str:
    if score >= rules.a_min:
        return A
    if score >= rules.b_min:
        return B
    return C


def grade(facts: LeadFacts, rules: Rules, now: datetime) -> Result:
    percent = completeness(facts, rules.completeness_fields)
    fired: list[Fired] = []
    for rule in rules.rules:
        if not rule.enabled:
            continue
        reasons: list[str] = []
        for cond in rule.conditions:
            ok, why = _holds(cond, facts, now, percent)
            if not ok:
                break
            reasons.append(why)
        else:
            fired.append(Fired(rule.rule_id, rule.display_name, rule.points, "; ".join(reasons) or "always"))
    score = sum(f.points for f in fired)
    return Result(score, grade_of(score, rules), tuple(fired), percent, rules.version)


def default_rules() -> Rules:
    """A new tenant's rules: article-style defaults (budget, referral, pricing interest, complete form)."""
    return Rules(
        rules=(
            Rule("budget-large", "Budget >= 300,000 CNY", 40, (BudgetCond("CNY", 300_000),)),
            Rule("budget-any", "Budget stated", 15, (BudgetCond("CNY", 1),)),
            Rule(
                "pricing-interest",
                "Viewed pricing twice in 7 days",
                25,
                (BehaviorCond("pricing_page_view", 2, timedelta(days=7)),),
            ),
            Rule("call-center", "Came through the call centre", 15, (SourceCond(("CALL_CENTER",)),)),
            Rule("complete-form", "Form at least 80 % complete", 10, (CompletenessCond(80),)),
        ),
        a_min=70,
        b_min=40,
        completeness_fields=("contact.name", "contact.phone", "company.name", "stated_budget", "region"),
    )
