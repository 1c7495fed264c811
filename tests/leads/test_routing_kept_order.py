"""Routing over a kept roster (domain/rep_index: the least-loaded order and rule matches kept between
decisions) decides exactly as the one-pass scan: same winner, trace, counts and summary, over random
rosters with every kind of skip, and while the winners' loads go up one decision after another."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta

import pytest

from kit.calendar import BusinessCalendar, weekly_hours
from services.leads.domain import rep_index
from services.leads.domain import routing as r

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
CAL = BusinessCalendar(use_cn_holidays=False)
ALWAYS = BusinessCalendar(
    weekly_hours=weekly_hours({d: ["00:00-24:00"] for d in range(7)}), use_cn_holidays=False
)
NEVER_OPEN = BusinessCalendar(weekly_hours=weekly_hours({6: ["00:00-00:30"]}), use_cn_holidays=False)
TEAMS = ("east", "east/a", "east/a/x", "east/b", "west")


def _rep(rnd: random.Random, i: int) -> r.Rep:
    leave = (NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    past = (NOW - timedelta(days=3), NOW - timedelta(days=2))
    return r.Rep(
        f"u{i}",
        rnd.choice(TEAMS),
        accepting=rnd.random() > 0.1,
        capacity=rnd.choice((0, 5, 10)),
        weight=rnd.choice((1, 2)),
        skills=frozenset(rnd.sample(("erp", "sap", "crm"), rnd.randrange(3))),
        languages=frozenset(rnd.sample(("zh-CN", "en"), rnd.randrange(3))),
        open_leads=rnd.randrange(12),
        leaves=rnd.choice(((), (), (), (leave,), (past,))),
        calendar=rnd.choice((None, None, None, ALWAYS, NEVER_OPEN)),
        last_assigned=rnd.choice((None, NOW - timedelta(hours=rnd.randrange(3)))),
    )


def _rule(rnd: random.Random) -> r.Rule:
    return r.Rule(
        "r",
        rnd.choice(TEAMS[:4]),
        r.LEAST_LOADED,
        include_sub_teams=rnd.random() < 0.5,
        required_skills=tuple(rnd.sample(("erp", "sap"), rnd.randrange(2))),
        match_language=rnd.random() < 0.5,
        allow_outside_working_hours=rnd.random() < 0.2,
    )


def _scanned(lead: r.LeadFacts, rules: list[r.Rule], reps: list[r.Rep], **kw: object) -> r.Decision:
    """The decision of the one-pass scan: no roster is found kept (a small roster of new objects
    would otherwise match a kept one, brought up to date in place, and take the kept path too)."""
    kept = rep_index.roster
    rep_index.roster = lambda _reps: None  # type: ignore[assignment]
    try:
        return r.route(lead, rules, [dataclasses.replace(x) for x in reps], NOW, **kw)  # type: ignore[arg-type]
    finally:
        rep_index.roster = kept  # type: ignore[assignment]


def _kept(
    lead: r.LeadFacts, rules: list[r.Rep] | list[r.Rule], reps: list[r.Rep], **kw: object
) -> r.Decision:
    r.route(lead, rules, reps, NOW, **kw)  # type: ignore[arg-type]  # seen once: kept from now on
    with rep_index.LOCK:
        assert rep_index.roster(reps) is not None
    return r.route(lead, rules, reps, NOW, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(40))
def test_kept_roster_decides_as_the_scan(seed: int) -> None:
    rnd = random.Random(seed)
    reps = [_rep(rnd, i) for i in range(rnd.choice((0, 3, 40, 200)))]
    rule = _rule(rnd)
    excluded = {f"u{rnd.randrange(max(len(reps), 1))}": r.PREVIOUS_OWNER for _ in range(rnd.randrange(3))}
    for i in range(5):
        lead = r.LeadFacts(f"L{seed}-{i}", language=rnd.choice(("", "zh-CN", "en")))
        kw = {"tenant_calendar": rnd.choice((CAL, None)), "excluded": excluded}
        assert _kept(lead, [rule], reps, **kw) == _scanned(lead, [rule], reps, **kw)


@pytest.mark.parametrize("seed", range(10))
def test_kept_roster_follows_loads_as_winners_take_leads(seed: int) -> None:
    """The batch's way: each decision's winner comes back with one lead more (a new Rep object)."""
    rnd = random.Random(100 + seed)
    reps = [_rep(rnd, i) for i in range(300)]
    rule = _rule(rnd)
    _kept(r.LeadFacts("warm"), [rule], reps, tenant_calendar=CAL)
    for i in range(60):
        lead = r.LeadFacts(f"L{seed}-{i}", language="zh-CN")
        kept = r.route(lead, [rule], reps, NOW, tenant_calendar=CAL)
        assert kept == _scanned(lead, [rule], reps, tenant_calendar=CAL)
        if i % 7 == 3:  # now and then a rep changes in another way (stops accepting, goes on leave)
            j = rnd.randrange(len(reps))
            reps[j] = dataclasses.replace(reps[j], accepting=not reps[j].accepting, leaves=())
        if kept.winner:
            j = next(k for k, x in enumerate(reps) if x.user_id == kept.winner)
            reps = [*reps]
            reps[j] = dataclasses.replace(reps[j], open_leads=reps[j].open_leads + 1, last_assigned=NOW)


def test_rule_matches_are_kept_per_kind_of_lead_and_rule_list() -> None:
    rules = [r.Rule(f"r{i}", "east", r.LEAST_LOADED, regions=(f"reg{i}/*",)) for i in range(5)]
    rep = r.Rep("u", "east")
    first = r.route(r.LeadFacts("L1", region="reg3/x"), rules, [rep], NOW)
    again = r.route(r.LeadFacts("L2", region="reg3/x"), [*rules], [rep], NOW)
    assert first.rule_id == again.rule_id == "r3" and first.rules_tried == again.rules_tried
    assert first.rules_tried is not again.rules_tried
    changed = [*rules[:3], dataclasses.replace(rules[3], regions=("other/*",)), rules[4]]
    assert r.route(r.LeadFacts("L3", region="reg3/x"), changed, [rep], NOW).fallback_used
