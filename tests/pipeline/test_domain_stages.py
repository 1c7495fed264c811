"""Stage models: validation, gates of every stage entered, probability rules, history diffs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.pipeline.domain import gates as g
from services.pipeline.domain import history as h
from services.pipeline.domain import stages as s
from tests.pipeline.test_domain_gates import MOMENT_OF_TRUTH, QUALIFIED, facts

LEGAL_DRAFT = g.HasEvidence("legal_draft", "Legal draft")
MODEL = s.StageModel(
    version=3,
    stages=(
        s.Stage("initial_contact", "Initial contact", 10),
        s.Stage(
            "needs_confirmed", "Needs confirmed", 30, g.HasEvidence("meeting_minutes", "Meeting minutes")
        ),
        s.Stage(
            "solution_confirmed",
            "Solution confirmed",
            70,
            g.Checked("solution_signed_off", "Solution signed off"),
        ),
        s.Stage("proposal_quote", "Proposal / quote", 70, MOMENT_OF_TRUTH),
        s.Stage(
            "contract_approval",
            "Contract approval",
            80,
            g.HasEvidence("quote", "Quote"),
            (s.ProbabilityRule("legal", "Legal draft uploaded", LEGAL_DRAFT, 90),),
        ),
        s.Stage("contract_signing", "Contract signing", 90),
    ),
    won=g.HasEvidence("signed_contract", "Signed contract"),
    evidence_types=frozenset({"meeting_minutes", "quote", "legal_draft", "signed_contract"}),
    checklist_items=frozenset({"solution_signed_off"}),
)


def test_the_example_model_is_valid() -> None:
    assert s.validate(MODEL) == []


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"stages": MODEL.stages[:5]}, "stages"),
        ({"stages": MODEL.stages + MODEL.stages[:3]}, "stages"),
        ({"stages": (*MODEL.stages[:5], s.Stage("initial_contact", "Again", 95))}, "stages[5].stage_id"),
        ({"stages": (*MODEL.stages[:5], s.Stage("won", "Won", 95))}, "stages[5].stage_id"),
        ({"stages": (*MODEL.stages[:5], s.Stage("late", "Late", 20))}, "stages[5].win_probability_percent"),
        ({"stages": (*MODEL.stages[:5], s.Stage("late", "Late", 100))}, "stages[5].win_probability_percent"),
        (
            {"stages": (*MODEL.stages[:5], s.Stage("late", "L", 95, g.HasEvidence("fax")))},
            "stages[5].entry_criteria",
        ),
        (
            {"stages": (*MODEL.stages[:5], s.Stage("late", "L", 95, g.Checked("nope")))},
            "stages[5].entry_criteria",
        ),
        (
            {"stages": (*MODEL.stages[:5], s.Stage("late", "L", 95, g.AllOf((g.AnyOf(()),))))},
            "stages[5].entry_criteria[0]",
        ),
        (
            {
                "stages": (
                    *MODEL.stages[:5],
                    s.Stage("late", "L", 95, rules=(s.ProbabilityRule("r", "R", g.ALWAYS, 90),)),
                )
            },
            "stages[5].probability_rules[0].probability_percent",
        ),
        ({"won": g.AnyOf(())}, "won_criteria"),
    ],
    ids=[
        "5 stages",
        "9 stages",
        "duplicate id",
        "reserved id",
        "decreasing",
        "100",
        "unknown evidence",
        "unknown checklist",
        "empty or",
        "rule below base",
        "empty won",
    ],
)
def test_invalid_models_are_refused_with_where(change: dict[str, object], path: str) -> None:
    model = s.StageModel(**{**MODEL.__dict__, **change})  # type: ignore[arg-type]
    assert path in [p.path for p in s.validate(model)]


def test_forward_move_runs_the_gate_of_every_stage_entered() -> None:
    review = s.review_move(MODEL, "initial_contact", "proposal_quote", facts())
    assert review.direction is s.Direction.FORWARD
    assert not review.passed
    assert [(x.stage_id, x.item.key) for x in review.missing] == [
        ("needs_confirmed", "meeting_minutes"),
        ("solution_confirmed", "solution_signed_off"),
        ("proposal_quote", "qualification.budget_min"),
        ("proposal_quote", "qualification.budget_max"),
        ("proposal_quote", "qualification.decision_date"),
        ("proposal_quote", "qualification.decision_maker_access"),
    ]
    ready = facts(QUALIFIED, evidence=("meeting_minutes",), checked=("solution_signed_off",))
    passed = s.review_move(MODEL, "initial_contact", "proposal_quote", ready)
    assert passed.passed and passed.probability.percent == 70
    assert len(passed.items) == 6


def test_moment_of_truth_blocks_proposal_but_not_the_stage_before() -> None:
    f = facts(evidence=("meeting_minutes",), checked=("solution_signed_off",))
    assert s.review_move(MODEL, "needs_confirmed", "solution_confirmed", f).passed
    review = s.review_move(MODEL, "solution_confirmed", "proposal_quote", f)
    assert not review.passed
    assert {x.stage_id for x in review.missing} == {"proposal_quote"}


def test_backward_and_same_stage_moves_run_no_gate() -> None:
    back = s.review_move(MODEL, "proposal_quote", "initial_contact", facts())
    assert back.direction is s.Direction.BACKWARD and back.passed and back.items == ()
    assert back.probability.percent == 10
    same = s.review_move(MODEL, "proposal_quote", "proposal_quote", facts())
    assert same.direction is s.Direction.SAME and same.passed


def test_creation_in_a_later_stage_runs_every_gate_from_the_first() -> None:
    review = s.review_move(MODEL, "", "needs_confirmed", facts())
    assert [x.stage_id for x in review.missing] == ["needs_confirmed"]
    assert s.review_move(MODEL, "", "initial_contact", facts()).passed


def test_unknown_target_stage() -> None:
    with pytest.raises(s.UnknownStage):
        s.review_move(MODEL, "initial_contact", "negotiation", facts())


def test_probability_rules_raise_never_lower_and_do_not_add_up() -> None:
    stage = MODEL.stage("contract_approval")
    assert stage is not None
    assert s.probability(stage, facts()).percent == 80
    raised = s.probability(stage, facts(evidence=("legal_draft",)))
    assert (raised.percent, raised.base, [r.rule_id for r in raised.applied]) == (90, 80, ["legal"])
    two = s.Stage(
        "x",
        "X",
        50,
        rules=(s.ProbabilityRule("a", "A", LEGAL_DRAFT, 60), s.ProbabilityRule("b", "B", LEGAL_DRAFT, 75)),
    )
    best = s.probability(two, facts(evidence=("legal_draft",)))
    assert (best.percent, [r.rule_id for r in best.applied]) == (75, ["b"])


def test_won_criteria_and_default_targets() -> None:
    assert [x.item.key for x in s.review_won(MODEL, "contract_signing", facts()).missing] == [
        "signed_contract"
    ]
    assert s.review_won(MODEL, "contract_signing", facts(evidence=("signed_contract",))).passed
    assert s.default_target(MODEL, "initial_contact") == "needs_confirmed"
    assert s.default_target(MODEL, "contract_signing") == s.WON
    assert s.default_target(MODEL, "") == "initial_contact"


@given(st.integers(-(10**15), 10**15), st.integers(0, 100))
def test_weighted_amount_is_the_rounded_product(amount: int, percent: int) -> None:
    w = s.weighted(amount, percent)
    assert abs(w * 100 - amount * percent) <= 50
    assert s.weighted(-amount, percent) == -w


def test_history_records_only_tracked_changes() -> None:
    before = {h.STAGE: "a", h.AMOUNT: "100 CNY", h.OWNER: "rep-a1"}
    after = {h.STAGE: "b", h.AMOUNT: "100 CNY", h.OWNER: "rep-a2"}
    assert h.changes(before, after) == [h.Change(h.STAGE, "a", "b"), h.Change(h.OWNER, "rep-a1", "rep-a2")]
    created = h.changes(None, after)
    assert [c.field for c in created] == list(h.TRACKED)
    assert h.as_of([(h.STAGE, "a"), (h.AMOUNT, "1 CNY"), (h.STAGE, "b")], h.STAGE) == "b"
