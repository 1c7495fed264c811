"""Routing: ordered rules pick a team, a strategy picks the rep, and every step is kept as a trace.

Pure and allocation-light: it runs on every intake (benchmark: 200 rules x 2,000 reps).
"""

from __future__ import annotations

import functools
import hashlib
import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import NamedTuple

from kit.calendar import BusinessCalendar
from services.leads.domain import rep_index

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


# The trace's records are named tuples: a decision over 200 rules makes 400 of them, and a frozen
# dataclass's __init__ (object.__setattr__ per field) cost about a fifth of the decision's CPU.
class Condition(NamedTuple):
    field: str
    expected: str
    actual: str
    passed: bool


class RuleTried(NamedTuple):
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


@functools.lru_cache(maxsize=4096)
def _joined(values: tuple[str, ...]) -> str:
    return ",".join(values)


def _check(rule: Rule, lead: LeadFacts) -> tuple[bool, tuple[Condition, ...]]:
    """Conditions in order, stopping at the first that fails (lazy: 200 rules are scanned per lead)."""
    out: list[Condition] = []
    if rule.regions:
        ok = region_matches(rule.regions, lead.region)
        region = Condition("region", _joined(rule.regions), lead.region, ok)
        if not ok:  # the usual end of a rule that does not match
            return False, (region,)
        out.append(region)
    if rule.product_lines:
        ok = any(p in rule.product_lines for p in lead.product_lines)
        out.append(Condition("product_lines", ",".join(rule.product_lines), ",".join(lead.product_lines), ok))
        if not ok:
            return False, tuple(out)
    for name, expected, actual in (
        ("channel", rule.channels, lead.channel),
        ("source_code", rule.source_codes, lead.source_code),
        ("grade", rule.grades, lead.grade),
        ("language_code", rule.language_codes, lead.language),
    ):
        if expected:
            ok = actual in expected
            out.append(Condition(name, _joined(expected), actual, ok))
            if not ok:
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


def match_rule_kept(rules: Sequence[Rule], lead: LeadFacts) -> tuple[Rule | None, Sequence[RuleTried]]:
    """match_rule, kept per rule list and kind of lead (the trace is shared: copy it to change it)."""
    facts = (lead.region, lead.product_lines, lead.channel, lead.source_code, lead.grade, lead.language)
    return rep_index.matched(rules, facts, lambda: match_rule(rules, lead))


def _candidate(rep: Rep, reasons: list[str], score: float, rank: int) -> Candidate:
    ratio = rep.open_leads / rep.capacity if rep.capacity else 0.0
    return Candidate(
        rep.user_id,
        rep.display_name,
        not reasons,
        reasons,
        rep.open_leads,
        rep.capacity,
        round(ratio, 6),
        rep.weight,
        score,
        rank,
    )


def tie_key(lead_id: str, user_id: str) -> int:
    """Fair, stable tie-break: a hash of lead and rep, so no rep wins ties by list or creation order."""
    return int.from_bytes(hashlib.blake2b(f"{lead_id}|{user_id}".encode(), digest_size=8).digest(), "big")


def _fair_winner(lead_id: str, tied: list[Rep]) -> Rep:
    """The tied rep with the least tie_key (the lead's part of the hashed text encoded once)."""
    if len(tied) == 1:
        return tied[0]
    head, blake2b, from_bytes = f"{lead_id}|".encode(), hashlib.blake2b, int.from_bytes
    return min(
        tied, key=lambda r: from_bytes(blake2b(head + r.user_id.encode(), digest_size=8).digest(), "big")
    )


def skip_reasons(
    rep: Rep,
    rule: Rule,
    lead: LeadFacts,
    now: datetime,
    tenant_calendar: BusinessCalendar | None,
    excluded: Mapping[str, str],
    tenant_working: bool | None = None,
) -> list[str]:
    """Why `rep` cannot take `lead` now; `tenant_working` is the tenant calendar's answer, computed once."""
    reasons: list[str] = []
    if not rep.accepting:
        reasons.append(NOT_ACCEPTING)
    if rep.leaves and any(s <= now < e for s, e in rep.leaves):
        reasons.append(ON_LEAVE)
    if not rule.allow_outside_working_hours:
        if rep.calendar is not None:
            working = rep.calendar.is_working_time(now)
        elif tenant_working is not None:
            working = tenant_working
        else:
            working = tenant_calendar is None or tenant_calendar.is_working_time(now)
        if not working:
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


TRACE_TOP = 10  # ranked eligible candidates kept in a trace
TRACE_SKIPPED = 20  # skipped candidates kept in a trace (the summary counts the rest)


_NEVER = rep_index.NEVER
_load_key = rep_index.load_key


def pick(
    strategy: str,
    lead_id: str,
    eligible: list[Rep],
    wrr_state: Mapping[str, int],
) -> tuple[Rep | None, list[tuple[Rep, float]], dict[str, int]]:
    """Apply the strategy. Returns the winner, the best candidates with scores (best first) and the WRR state.

    Linear in the number of reps; the fair hash is only computed for reps tied with the best.
    """
    state = dict(wrr_state)
    if not eligible:
        return None, [], state
    if strategy == WRR:
        # Smooth weighted round robin (nginx): deterministic, spreads picks by weight.
        total = 0
        get = state.get
        for rep in eligible:
            w = rep.weight if rep.weight > 0 else 1
            total += w
            state[rep.user_id] = get(rep.user_id, 0) + w
        # (minus the current weight, position): nsmallest on plain tuples, ties in list order as
        # with a key function, without a Python call per rep.
        order = [(-state[r.user_id], i) for i, r in enumerate(eligible)]
        top_order = heapq.nsmallest(TRACE_TOP, order)
        best = top_order[0][0]
        top = [eligible[i] for _, i in top_order]
        winner = _fair_winner(lead_id, [eligible[i] for k, i in order if k == best])
        scores = {r.user_id: float(state[r.user_id]) for r in top}
        scores[winner.user_id] = float(state[winner.user_id])
        state[winner.user_id] -= total
    else:
        # Least loaded; ties to the longest idle rep (never assigned first), then the fair hash.
        load_key, never = _load_key, _NEVER  # locals: this runs once per rep
        keys = [
            (load_key(r.open_leads, r.capacity), at.timestamp() if (at := r.last_assigned) else never, i)
            for i, r in enumerate(eligible)
        ]
        top_keys = heapq.nsmallest(TRACE_TOP, keys)
        b0, b1 = top_keys[0][0], top_keys[0][1]
        tied = [eligible[k[2]] for k in keys if k[0] == b0 and k[1] == b1]
        winner = _fair_winner(lead_id, tied)
        top = [eligible[k[2]] for k in top_keys]
        scores = {eligible[k[2]].user_id: -k[0] for k in top_keys}
        scores[winner.user_id] = -b0
    ranked = [winner, *[r for r in top if r is not winner][: TRACE_TOP - 1]]
    return winner, [(r, scores[r.user_id]) for r in ranked], state


def _scan(
    reps: Sequence[Rep],
    rule: Rule,
    lead: LeadFacts,
    now: datetime,
    tenant_calendar: BusinessCalendar | None,
    skip: Mapping[str, str],
    tenant_working: bool | None,
    hours_ok: bool,
) -> tuple[list[Rep], list[tuple[Rep, list[str]]]]:
    """The team's eligible reps and the skipped ones with why, in list order: one pass over `reps`."""
    eligible: list[Rep] = []
    skipped: list[tuple[Rep, list[str]]] = []
    team, sub = rule.team_path, rule.include_sub_teams
    prefix = team + "/"
    # The common case is checked inline; anything else asks skip_reasons, the one definition of
    # why a rep is skipped.
    skills, language = rule.required_skills, lead.language if rule.match_language else ""
    for rep in reps:
        path = rep.team_path
        if path != team and not (sub and path.startswith(prefix)):
            continue
        if (
            rep.accepting
            and not rep.leaves
            and rep.calendar is None
            and hours_ok
            and (not rep.capacity or rep.open_leads < rep.capacity)
            and (not skills or all(x in rep.skills for x in skills))
            and (not language or language in rep.languages)
            and rep.user_id not in skip
        ):
            eligible.append(rep)
            continue
        reasons = skip_reasons(rep, rule, lead, now, tenant_calendar, skip, tenant_working)
        if reasons:
            skipped.append((rep, reasons))
        else:
            eligible.append(rep)
    return eligible, skipped


def _least_loaded_kept(
    roster: rep_index.Roster,
    rule: Rule,
    lead: LeadFacts,
    now: datetime,
    tenant_calendar: BusinessCalendar | None,
    skip: Mapping[str, str],
    tenant_working: bool | None,
) -> tuple[Rep | None, list[tuple[Rep, float]], int, list[tuple[Rep, list[str]]], int]:
    """_scan + pick's least loaded over a kept roster (winner, ranked, eligible count, skipped shown,
    skipped count), the same answer: the team's order is read from its least loaded end, and only
    the reps whose eligibility depends on the hour or the call (leaves, own calendar, excluded) are
    checked one by one. Call with rep_index.LOCK held, in the working hours the rule needs."""
    reps = roster.reps
    team, sub = rule.team_path, rule.include_sub_teams
    skills, language = rule.required_skills, lead.language if rule.match_language else ""
    order = roster.order(team, sub, skills, language)
    out: set[int] = set()  # positions in order.ok skipped by this decision
    for pos in order.dynamic:
        if skip_reasons(reps[pos], rule, lead, now, tenant_calendar, skip, tenant_working):
            out.add(pos)
    if skip:
        members = roster.team(team, sub)[1]
        for user_id in skip:
            for pos in roster.positions(user_id):
                if pos in members and rep_index.static_ok(reps[pos], skills, language):
                    out.add(pos)
    top: list[rep_index.Key] = []
    tied: list[Rep] = []
    for k in order.ok:
        if k[2] in out:
            continue
        tie = not top or (k[0] == top[0][0] and k[1] == top[0][1])
        if tie:
            tied.append(reps[k[2]])
        if len(top) < TRACE_TOP:
            top.append(k)
        elif not tie:
            break
    shown = list(islice(heapq.merge(order.skipped, sorted(out)), TRACE_SKIPPED))
    skipped = [
        (reps[p], skip_reasons(reps[p], rule, lead, now, tenant_calendar, skip, tenant_working))
        for p in shown
    ]
    n_eligible, n_skipped = len(order.ok) - len(out), len(order.skipped) + len(out)
    if not top:
        return None, [], n_eligible, skipped, n_skipped
    winner = _fair_winner(lead.lead_id, tied)
    scores = {reps[k[2]].user_id: -k[0] for k in top}
    scores[winner.user_id] = -top[0][0]
    best = [reps[k[2]] for k in top]
    ranked = [winner, *[r for r in best if r is not winner][: TRACE_TOP - 1]]
    return winner, [(r, scores[r.user_id]) for r in ranked], n_eligible, skipped, n_skipped


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
        rule, tried = match_rule_kept(rules, lead)
        decision.rules_tried = list(tried)
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
    tenant_working = None
    if tenant_calendar is not None and not rule.allow_outside_working_hours:
        tenant_working = tenant_calendar.is_working_time(now)
    skip = excluded or {}
    hours_ok = rule.allow_outside_working_hours or tenant_working is not False
    kept = None
    if rule.strategy != WRR and hours_ok:  # least loaded over a roster seen before: its kept order
        with rep_index.LOCK:
            roster = rep_index.roster(reps)
            if roster is not None:
                kept = _least_loaded_kept(roster, rule, lead, now, tenant_calendar, skip, tenant_working)
    if kept is not None:
        winner, ranked, n_eligible, skipped, n_skipped = kept
        decision.wrr_state = dict(wrr_state or {})
    else:
        eligible, skipped = _scan(reps, rule, lead, now, tenant_calendar, skip, tenant_working, hours_ok)
        winner, ranked, decision.wrr_state = pick(rule.strategy, lead.lead_id, eligible, wrr_state or {})
        n_eligible, n_skipped = len(eligible), len(skipped)
    for rank, (rep, score) in enumerate(ranked, start=1):
        decision.candidates.append(_candidate(rep, [], score, rank))
    for rep, reasons in skipped[:TRACE_SKIPPED]:
        decision.candidates.append(_candidate(rep, reasons, 0.0, 0))
    counts = f"{n_eligible} eligible, {n_skipped} skipped"
    if winner is None:
        decision.fallback_used = True
        decision.pool_id = rule.pool_id or fallback_pool
        shown = ", ".join(f"{c.user_id} ({'/'.join(c.skip_reasons)})" for c in decision.candidates[:5])
        decision.summary = (
            f"{head}, but no rep was eligible ({shown or 'no reps in the team'}); "
            f"the lead waits in pool {decision.pool_id!r}."
        )
        return decision
    decision.winner = winner.user_id
    best = [c for c in decision.candidates if c.eligible][:3]
    detail = "; ".join(f"{c.user_id} score {c.score:g}" for c in best)
    label = "weighted round robin" if rule.strategy == WRR else "least loaded"
    decision.summary = f"{head}; {label}: {winner.user_id} won ({detail}; {counts})."
    return decision
