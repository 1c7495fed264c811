"""Routing: ordered rules pick a team, a strategy picks the rep, and every step is kept as a trace.

Pure and allocation-light: it runs on every intake (benchmark: 200 rules x 2,000 reps).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from kit.calendar import BusinessCalendar

WRR = "WEIGHTED_ROUND_ROBIN"
LEAST_LOADED = "LEAST_LOADED"
CLAIM_ONLY = "CLAIM_ONLY"

# Skip reasons (names of CandidateSkipReason without the prefix).
NOT_ACCEPTING = "NOT_ACCEPTING"
ON_LEAVE = "ON_LEAVE"
OUTSIDE_WORKING_HOURS = "OUTSIDE_WORKING_HOURS"
AT_CAPACITY = "AT_CAPACITY"
MISSING_SKILL = "MISSING_SKILL"
LANGUAGE_MISMATCH = "LANGUAGE_MISMATCH"
RECLAIM_COOLDOWN = "RECLAIM_COOLDOWN"
PREVIOUS_OWNER = "PREVIOUS_OWNER"


@dataclass(frozen=True)
class LeadFacts:
    lead_id: str
    region: str = ""
    product_lines: tuple[str, ...] = ()
    channel: str = ""
    source_code: str = ""
    grade: str = ""
    language: str = ""


@dataclass(frozen=True)
class Rule:
    rule_id: str
    team_path: str
    strategy: str
    display_name: str = ""
    enabled: bool = True
    regions: tuple[str, ...] = ()
    product_lines: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    source_codes: tuple[str, ...] = ()
    grades: tuple[str, ...] = ()
    language_codes: tuple[str, ...] = ()
    include_sub_teams: bool = False
    required_skills: tuple[str, ...] = ()
    match_language: bool = False
    allow_outside_working_hours: bool = False
    pool_id: str = ""


@dataclass(frozen=True)
class Rep:
    user_id: str
    team_path: str
    display_name: str = ""
    accepting: bool = True
    capacity: int = 0  # 0 = no capacity limit
    weight: int = 1
    skills: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    open_leads: int = 0
    leaves: tuple[tuple[datetime, datetime], ...] = ()
    calendar: BusinessCalendar | None = None  # None = the tenant's calendar
    last_assigned: datetime | None = None
    supervisor_user_id: str = ""


@dataclass(frozen=True)
class Condition:
    field: str
    expected: str
    actual: str
    passed: bool


@dataclass(frozen=True)
class RuleTried:
    rule_id: str
    display_name: str
    position: int
    matched: bool
    conditions: tuple[Condition, ...]


@dataclass
class Candidate:
    user_id: str
    display_name: str
    eligible: bool
    skip_reasons: list[str]
    open_leads: int
    capacity: int
    load_ratio: float
    weight: int
    score: float = 0.0
    rank: int = 0


@dataclass
class Decision:
    rules_tried: list[RuleTried] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    winner: str = ""
    team_path: str = ""
    strategy: str = ""
    pool_id: str = ""
    fallback_used: bool = False
    summary: str = ""
    rule_id: str = ""
    # Smooth WRR state after the decision (user -> current weight), to persist.
    wrr_state: dict[str, int] = field(default_factory=dict)


def region_matches(patterns: Sequence[str], region: str) -> bool:
    for p in patterns:
        if p.endswith("/*"):
            base = p[:-2]
            if region == base or region.startswith(base + "/"):
                return True
        elif p == region:
            return True
    return False


def team_contains(team: str, path: str, include_sub: bool) -> bool:
    return path == team or (include_sub and path.startswith(team + "/"))


def _check(rule: Rule, lead: LeadFacts) -> tuple[bool, tuple[Condition, ...]]:
    out: list[Condition] = []
    checks: tuple[tuple[str, tuple[str, ...], str, bool], ...] = (
        ("region", rule.regions, lead.region, not rule.regions or region_matches(rule.regions, lead.region)),
        (
            "product_lines",
            rule.product_lines,
            ",".join(lead.product_lines),
            not rule.product_lines or any(p in rule.product_lines for p in lead.product_lines),
        ),
        ("channel", rule.channels, lead.channel, not rule.channels or lead.channel in rule.channels),
        (
            "source_code",
            rule.source_codes,
            lead.source_code,
            not rule.source_codes or lead.source_code in rule.source_codes,
        ),
        ("grade", rule.grades, lead.grade, not rule.grades or lead.grade in rule.grades),
        (
            "language_code",
            rule.language_codes,
            lead.language,
            not rule.language_codes or lead.language in rule.language_codes,
        ),
    )
    for name, expected, actual, passed in checks:
        if not expected:
            continue
        out.append(Condition(name, ",".join(expected), actual, passed))
        if not passed:
            return False, tuple(out)
    return True, tuple(out)


def match_rule(rules: Sequence[Rule], lead: LeadFacts) -> tuple[Rule | None, list[RuleTried]]:
    """The first enabled rule whose conditions all hold, and the trace of every rule tried."""
    tried: list[RuleTried] = []
    for pos, rule in enumerate(rules, start=1):
        if not rule.enabled:
            continue
        ok, conds = _check(rule, lead)
        tried.append(RuleTried(rule.rule_id, rule.display_name, pos, ok, conds))
        if ok:
            return rule, tried
    return None, tried


def tie_key(lead_id: str, user_id: str) -> int:
    """Fair, stable tie-break: a hash of lead and rep, so no rep wins ties by list or creation order."""
    return int.from_bytes(hashlib.blake2b(f"{lead_id}|{user_id}".encode(), digest_size=8).digest(), "big")


def skip_reasons(
    rep: Rep,
    rule: Rule,
    lead: LeadFacts,
    now: datetime,
    tenant_calendar: BusinessCalendar | None,
    excluded: Mapping[str, str],
) -> list[str]:
    reasons: list[str] = []
    if not rep.accepting:
        reasons.append(NOT_ACCEPTING)
    if any(s <= now < e for s, e in rep.leaves):
        reasons.append(ON_LEAVE)
    if not rule.allow_outside_working_hours:
        cal = rep.calendar or tenant_calendar
        if cal is not None and not cal.is_working_time(now):
            reasons.append(OUTSIDE_WORKING_HOURS)
    if rep.capacity and rep.open_leads >= rep.capacity:
        reasons.append(AT_CAPACITY)
    if rule.required_skills and not all(s in rep.skills for s in rule.required_skills):
        reasons.append(MISSING_SKILL)
    if rule.match_language and lead.language and lead.language not in rep.languages:
        reasons.append(LANGUAGE_MISMATCH)
    if rep.user_id in excluded:
        reasons.append(excluded[rep.user_id])
    return reasons


def pick(
    strategy: str,
    lead_id: str,
    eligible: list[tuple[Rep, Candidate]],
    wrr_state: Mapping[str, int],
) -> tuple[Rep | None, dict[str, int]]:
    """Apply the strategy to eligible candidates; fills score and rank. Returns winner and new WRR state."""
    if not eligible:
        return None, dict(wrr_state)
    state = dict(wrr_state)
    if strategy == WRR:
        # Smooth weighted round robin (nginx): deterministic, spreads picks by weight.
        total = 0
        for rep, cand in eligible:
            w = max(rep.weight, 1)
            total += w
            state[rep.user_id] = state.get(rep.user_id, 0) + w
            cand.score = float(state[rep.user_id])
        order = sorted(eligible, key=lambda rc: (-state[rc[0].user_id], tie_key(lead_id, rc[0].user_id)))
        winner = order[0][0]
        state[winner.user_id] -= total
    else:
        for _rep, cand in eligible:
            cand.score = round(1.0 - cand.load_ratio, 6)
        # Least loaded; ties to the longest idle rep (never assigned first), then the fair hash.
        order = sorted(
            eligible,
            key=lambda rc: (
                -rc[1].score,
                rc[0].last_assigned.timestamp() if rc[0].last_assigned else float("-inf"),
                tie_key(lead_id, rc[0].user_id),
            ),
        )
        winner = order[0][0]
    for rank, (_, cand) in enumerate(order, start=1):
        cand.rank = rank
    return winner, state


def route(
    lead: LeadFacts,
    rules: Sequence[Rule],
    reps: Sequence[Rep],
    now: datetime,
    *,
    fallback_pool: str = "fallback",
    region_pool: str = "default",
    tenant_calendar: BusinessCalendar | None = None,
    wrr_state: Mapping[str, int] | None = None,
    excluded: Mapping[str, str] | None = None,
    only_team: Rule | None = None,
) -> Decision:
    """Decide who gets `lead`. `only_team` skips rule matching (SLA reassignment inside the same team)."""
    decision = Decision()
    if only_team is not None:
        rule: Rule | None = only_team
    else:
        rule, decision.rules_tried = match_rule(rules, lead)
    if rule is None:
        decision.fallback_used = True
        decision.pool_id = fallback_pool
        decision.summary = f"No routing rule matched; the lead waits in the fallback pool {fallback_pool!r}."
        decision.wrr_state = dict(wrr_state or {})
        return decision
    decision.rule_id = rule.rule_id
    decision.team_path = rule.team_path
    decision.strategy = rule.strategy
    head = f"Rule {rule.rule_id!r} matched -> team {rule.team_path}"
    if rule.strategy == CLAIM_ONLY:
        decision.pool_id = rule.pool_id or region_pool
        decision.summary = f"{head}, claim-only: the lead waits in pool {decision.pool_id!r} for a claim."
        decision.wrr_state = dict(wrr_state or {})
        return decision
    eligible: list[tuple[Rep, Candidate]] = []
    for rep in reps:
        if not team_contains(rule.team_path, rep.team_path, rule.include_sub_teams):
            continue
        reasons = skip_reasons(rep, rule, lead, now, tenant_calendar, excluded or {})
        ratio = rep.open_leads / rep.capacity if rep.capacity else 0.0
        cand = Candidate(
            rep.user_id,
            rep.display_name,
            not reasons,
            reasons,
            rep.open_leads,
            rep.capacity,
            round(ratio, 6),
            rep.weight,
        )
        decision.candidates.append(cand)
        if not reasons:
            eligible.append((rep, cand))
    winner, decision.wrr_state = pick(rule.strategy, lead.lead_id, eligible, wrr_state or {})
    decision.candidates.sort(key=lambda c: (not c.eligible, c.rank or 1 << 30))
    if winner is None:
        decision.fallback_used = True
        decision.pool_id = rule.pool_id or fallback_pool
        skipped = ", ".join(f"{c.user_id} ({'/'.join(c.skip_reasons)})" for c in decision.candidates[:5])
        decision.summary = (
            f"{head}, but no rep was eligible ({skipped or 'no reps in the team'}); "
            f"the lead waits in pool {decision.pool_id!r}."
        )
        return decision
    decision.winner = winner.user_id
    ranked = [c for c in decision.candidates if c.eligible][:3]
    detail = "; ".join(f"{c.user_id} score {c.score:g}" for c in ranked)
    label = "weighted round robin" if rule.strategy == WRR else "least loaded"
    decision.summary = f"{head}; {label}: {winner.user_id} won ({detail})."
    return decision
