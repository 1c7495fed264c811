"""Grading rules: every condition kind, thresholds, fired-rule explanations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.leads.domain import grading as g

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def facts(**kw: object) -> g.LeadFacts:
    base: dict[str, object] = {"fields": {}}
    base.update(kw)
    return g.LeadFacts(**base)  # type: ignore[arg-type]


CASES = [
    ("source channel", g.SourceCond(("CALL_CENTER",)), facts(channel="CALL_CENTER"), True),
    ("source other channel", g.SourceCond(("CALL_CENTER",)), facts(channel="WEB_FORM"), False),
    ("source code", g.SourceCond((), ("expo",)), facts(source_code="expo"), True),
    (
        "equals",
        g.FieldCond("company.industry", "EQUALS", ("mfg",)),
        facts(fields={"company.industry": "mfg"}),
        True,
    ),
    ("not equals", g.FieldCond("region", "NOT_EQUALS", ("west",)), facts(fields={"region": "east"}), True),
    ("in", g.FieldCond("region", "IN", ("east", "north")), facts(fields={"region": "north"}), True),
    ("in miss", g.FieldCond("region", "IN", ("east",)), facts(fields={"region": "south"}), False),
    (
        "contains",
        g.FieldCond("description", "CONTAINS", ("ERP",)),
        facts(fields={"description": "need erp"}),
        True,
    ),
    (
        "ge",
        g.FieldCond("attributes.headcount", "GREATER_OR_EQUAL", ("100",)),
        facts(fields={"attributes.headcount": 250}),
        True,
    ),
    (
        "ge miss",
        g.FieldCond("attributes.headcount", "GREATER_OR_EQUAL", ("100",)),
        facts(fields={"attributes.headcount": 20}),
        False,
    ),
    (
        "le",
        g.FieldCond("attributes.headcount", "LESS_OR_EQUAL", ("100",)),
        facts(fields={"attributes.headcount": 20}),
        True,
    ),
    ("ge not a number", g.FieldCond("x", "GREATER_OR_EQUAL", ("1",)), facts(fields={"x": "many"}), False),
    ("present", g.FieldCond("company.name", "PRESENT"), facts(fields={"company.name": "ACME"}), True),
    ("present empty", g.FieldCond("company.name", "PRESENT"), facts(fields={"company.name": ""}), False),
    ("absent", g.FieldCond("company.name", "ABSENT"), facts(fields={}), True),
    (
        "list in",
        g.FieldCond("product_lines", "IN", ("erp",)),
        facts(fields={"product_lines": ["crm", "erp"]}),
        True,
    ),
    (
        "behavior twice",
        g.BehaviorCond("pricing", 2, timedelta(days=7)),
        facts(behaviors=[g.Behavior("pricing", NOW - timedelta(days=1)), g.Behavior("pricing", NOW)]),
        True,
    ),
    (
        "behavior too old",
        g.BehaviorCond("pricing", 2, timedelta(days=7)),
        facts(behaviors=[g.Behavior("pricing", NOW - timedelta(days=10)), g.Behavior("pricing", NOW)]),
        False,
    ),
    (
        "behavior all time",
        g.BehaviorCond("pricing", 2),
        facts(behaviors=[g.Behavior("pricing", NOW - timedelta(days=100)), g.Behavior("pricing", NOW)]),
        True,
    ),
    (
        "budget in range",
        g.BudgetCond("CNY", 100_000, 500_000),
        facts(budget_currency="CNY", budget_units=300_000),
        True,
    ),
    (
        "budget above",
        g.BudgetCond("CNY", 100_000, 500_000),
        facts(budget_currency="CNY", budget_units=600_000),
        False,
    ),
    (
        "budget other currency",
        g.BudgetCond("CNY", 1),
        facts(budget_currency="USD", budget_units=600_000),
        False,
    ),
    ("budget none", g.BudgetCond("CNY", 1), facts(), False),
]


@pytest.mark.parametrize(("name", "cond", "lead", "fires"), CASES, ids=[c[0] for c in CASES])
def test_condition(name: str, cond: g.Condition, lead: g.LeadFacts, fires: bool) -> None:
    rules = g.Rules((g.Rule("r", name, 10, (cond,)),))
    result = g.grade(lead, rules, NOW)
    assert (result.score == 10) is fires
    assert [f.rule_id for f in result.fired] == (["r"] if fires else [])


@pytest.mark.parametrize(
    ("score", "grade"), [(100, "A"), (70, "A"), (69, "B"), (40, "B"), (39, "C"), (-5, "C")]
)
def test_thresholds(score: int, grade: str) -> None:
    assert g.grade_of(score, g.Rules(a_min=70, b_min=40)) == grade


def test_completeness_and_fired_rules_explain_the_score() -> None:
    rules = g.Rules(
        (
            g.Rule("complete", "Complete form", 30, (g.CompletenessCond(60),)),
            g.Rule("big", "Big budget", 50, (g.BudgetCond("CNY", 300_000),)),
            g.Rule("off", "Disabled", 100, (), enabled=False),
            g.Rule("spam", "Free mail", -20, (g.FieldCond("contact.email", "CONTAINS", ("@qq.com",)),)),
        ),
        completeness_fields=("contact.name", "contact.phone", "company.name", "stated_budget", "region"),
    )
    lead = facts(
        fields={
            "contact.name": "Zhang",
            "contact.phone": "+86138",
            "company.name": "ACME",
            "stated_budget": 0,
        },
        budget_currency="CNY",
        budget_units=500_000,
    )
    result = g.grade(lead, rules, NOW)
    assert result.completeness == 60
    assert [f.rule_id for f in result.fired] == ["complete", "big"]
    assert result.score == 80 and result.grade == "A"
    assert "500,000" in result.fired[1].explanation


def test_regrade_on_behaviour_moves_c_to_b() -> None:
    rules = g.default_rules()
    lead = facts(fields={"contact.phone": "+86138"}, budget_currency="CNY", budget_units=50_000)
    before = g.grade(lead, rules, NOW)
    lead.behaviors = [g.Behavior("pricing_page_view", NOW), g.Behavior("pricing_page_view", NOW)]
    after = g.grade(lead, rules, NOW)
    assert (before.grade, after.grade) == ("C", "B")
    assert after.score - before.score == 25
