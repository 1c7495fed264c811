"""Routing: rule matching, every strategy, every skip, fallback, fair ties, traces."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from kit.calendar import BusinessCalendar
from services.leads.domain import routing as r

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
CAL = BusinessCalendar(use_cn_holidays=False)
TEAM = "east/team-a"


def rule(**kw: object) -> r.Rule:
    base: dict[str, object] = {"rule_id": "r1", "team_path": TEAM, "strategy": r.LEAST_LOADED}
    base.update(kw)
    return r.Rule(**base)  # type: ignore[arg-type]


LEAD = r.LeadFacts(
    "L1", region="east/shanghai", product_lines=("erp",), channel="WEB_FORM", grade="A", language="zh-CN"
)


@pytest.mark.parametrize(
    ("name", "kw", "matched"),
    [
        ("region exact", {"regions": ("east/shanghai",)}, True),
        ("region wildcard", {"regions": ("east/*",)}, True),
        ("region other", {"regions": ("west/*",)}, False),
        ("region prefix is not a parent", {"regions": ("eas/*",)}, False),
        ("product any", {"product_lines": ("crm", "erp")}, True),
        ("product miss", {"product_lines": ("crm",)}, False),
        ("channel", {"channels": ("WEB_FORM",)}, True),
        ("source miss", {"source_codes": ("expo",)}, False),
        ("grade", {"grades": ("A", "B")}, True),
        ("grade miss", {"grades": ("C",)}, False),
        ("language", {"language_codes": ("zh-CN",)}, True),
        ("all conditions", {"regions": ("east/*",), "grades": ("A",), "product_lines": ("erp",)}, True),
        ("empty matches all", {}, True),
    ],
)
def test_rule_conditions(name: str, kw: dict[str, object], matched: bool) -> None:
    found, tried = r.match_rule([rule(**kw)], LEAD)
    assert (found is not None) is matched
    assert tried[0].matched is matched


def test_first_match_wins_disabled_skipped_and_trace_stops_at_first_failed_condition() -> None:
    rules = [
        rule(rule_id="off", enabled=False),
        rule(rule_id="west", regions=("west/*",), grades=("A",)),
        rule(rule_id="east", regions=("east/*",)),
        rule(rule_id="later"),
    ]
    found, tried = r.match_rule(rules, LEAD)
    assert found is not None and found.rule_id == "east"
    assert [(t.rule_id, t.position, t.matched) for t in tried] == [("west", 2, False), ("east", 3, True)]
    assert [c.field for c in tried[0].conditions] == ["region"]  # stopped before grade


def rep(uid: str, **kw: object) -> r.Rep:
    base: dict[str, object] = {"user_id": uid, "team_path": TEAM, "capacity": 10}
    base.update(kw)
    return r.Rep(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reason", "candidate", "rule_kw", "excluded"),
    [
        (r.NOT_ACCEPTING, rep("x", accepting=False), {}, {}),
        (r.ON_LEAVE, rep("x", leaves=((NOW - timedelta(hours=1), NOW + timedelta(days=1)),)), {}, {}),
        (r.AT_CAPACITY, rep("x", open_leads=10), {}, {}),
        (r.MISSING_SKILL, rep("x", skills=frozenset({"erp"})), {"required_skills": ("erp", "sap")}, {}),
        (r.LANGUAGE_MISMATCH, rep("x", languages=frozenset({"en"})), {"match_language": True}, {}),
        (r.PREVIOUS_OWNER, rep("x"), {}, {"x": r.PREVIOUS_OWNER}),
        (r.RECLAIM_COOLDOWN, rep("x"), {}, {"x": r.RECLAIM_COOLDOWN}),
    ],
)
def test_each_skip_reason_sends_the_lead_to_the_next_rep(
    reason: str, candidate: r.Rep, rule_kw: dict[str, object], excluded: dict[str, str]
) -> None:
    other = rep("y", open_leads=9, skills=frozenset({"erp", "sap"}), languages=frozenset({"zh-CN"}))
    d = r.route(LEAD, [rule(**rule_kw)], [candidate, other], NOW, tenant_calendar=CAL, excluded=excluded)
    assert d.winner == "y"
    skipped = next(c for c in d.candidates if c.user_id == "x")
    assert not skipped.eligible and reason in skipped.skip_reasons and skipped.rank == 0


def test_outside_working_hours_skipped_unless_the_rule_allows_it() -> None:
    night = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 22:00 Shanghai
    reps = [rep("x")]
    d = r.route(LEAD, [rule()], reps, night, tenant_calendar=CAL)
    assert d.winner == "" and d.fallback_used and d.candidates[0].skip_reasons == [r.OUTSIDE_WORKING_HOURS]
    own_hours = BusinessCalendar(weekly_hours={d_: ["00:00-24:00"] for d_ in range(7)}, use_cn_holidays=False)
    assert r.route(LEAD, [rule()], [rep("x", calendar=own_hours)], night, tenant_calendar=CAL).winner == "x"
    assert (
        r.route(LEAD, [rule(allow_outside_working_hours=True)], reps, night, tenant_calendar=CAL).winner
        == "x"
    )


def test_no_match_goes_to_the_fallback_pool_and_claim_only_to_the_rule_pool() -> None:
    d = r.route(LEAD, [rule(regions=("west/*",))], [rep("x")], NOW, fallback_pool="fb")
    assert (d.winner, d.pool_id, d.fallback_used) == ("", "fb", True)
    assert "fallback" in d.summary
    d = r.route(LEAD, [rule(strategy=r.CLAIM_ONLY, pool_id="east")], [rep("x")], NOW)
    assert (d.winner, d.pool_id, d.fallback_used, d.strategy) == ("", "east", False, r.CLAIM_ONLY)
    d = r.route(LEAD, [rule(pool_id="east-queue")], [rep("x", accepting=False)], NOW)
    assert (d.winner, d.pool_id, d.fallback_used) == ("", "east-queue", True)


def test_team_and_sub_teams() -> None:
    reps = [rep("sub", team_path=TEAM + "/north"), rep("other", team_path="east/team-b")]
    assert r.route(LEAD, [rule()], reps, NOW).winner == ""
    assert r.route(LEAD, [rule(include_sub_teams=True)], reps, NOW).winner == "sub"


def test_least_loaded_picks_lowest_ratio_and_explains() -> None:
    reps = [
        rep("li", open_leads=3, capacity=20),
        rep("wang", open_leads=5, capacity=20),
        rep("zhao", open_leads=1, capacity=4),
    ]
    d = r.route(LEAD, [rule()], reps, NOW)
    assert d.winner == "li"
    assert [(c.user_id, c.rank, c.score) for c in d.candidates] == [
        ("li", 1, 0.85),
        ("wang", 2, 0.75),
        ("zhao", 3, 0.75),
    ]
    assert "li" in d.summary and "least loaded" in d.summary


def test_least_loaded_tie_goes_to_longest_idle() -> None:
    reps = [
        rep("a", last_assigned=NOW - timedelta(minutes=1)),
        rep("b", last_assigned=NOW - timedelta(hours=1)),
    ]
    assert r.route(LEAD, [rule()], reps, NOW).winner == "b"


def _simulate(strategy: str, reps: list[r.Rep], n: int = 1000) -> Counter[str]:
    wins: Counter[str] = Counter()
    state: dict[str, int] = {}
    current = {x.user_id: x for x in reps}
    for i in range(n):
        lead = r.LeadFacts(f"lead-{i:05d}", region="east/shanghai")
        d = r.route(lead, [rule(strategy=strategy)], list(current.values()), NOW, wrr_state=state)
        state = d.wrr_state
        wins[d.winner] += 1
        if not d.winner:
            continue
        w = current[d.winner]
        current[d.winner] = r.Rep(**{**w.__dict__, "open_leads": w.open_leads + 1})
    return wins


def test_weighted_round_robin_follows_weights_over_1000_leads() -> None:
    reps = [rep("a", weight=1, capacity=0), rep("b", weight=2, capacity=0), rep("c", weight=1, capacity=0)]
    wins = _simulate(r.WRR, reps)
    assert wins == Counter({"b": 500, "a": 250, "c": 250})


def test_equal_weights_share_evenly_and_ties_do_not_follow_list_order() -> None:
    reps = [rep(f"r{i}", capacity=0) for i in range(4)]
    wins = _simulate(r.WRR, reps)
    assert set(wins.values()) == {250}
    # First picks: with all reps tied, the winner depends on the lead, not on who is listed first.
    firsts = Counter(
        r.route(r.LeadFacts(f"x{i}"), [rule(strategy=r.WRR)], reps, NOW).winner for i in range(400)
    )
    assert len(firsts) == 4 and max(firsts.values()) < 160
    firsts_rev = Counter(
        r.route(r.LeadFacts(f"x{i}"), [rule(strategy=r.WRR)], reps[::-1], NOW).winner for i in range(400)
    )
    assert firsts == firsts_rev


def test_least_loaded_balances_1000_leads_and_respects_capacity() -> None:
    reps = [rep("small", capacity=100), rep("big", capacity=300), rep("mid", capacity=200)]
    wins = _simulate(r.LEAST_LOADED, reps, 600)
    assert wins == Counter({"big": 300, "mid": 200, "small": 100})
    full = _simulate(r.LEAST_LOADED, [rep("a", capacity=5), rep("b", capacity=5)], 12)
    assert full == Counter({"a": 5, "b": 5, "": 2})  # the rest goes to the fallback queue
