"""The gate engine: every criterion kind, AND / OR / NOT, the moment-of-truth rule, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.pipeline.domain import gates as g

BUDGET_MIN = g.FieldSet("qualification.budget_min", "Budget (min)")
BUDGET_MAX = g.FieldSet("qualification.budget_max", "Budget (max)")
DECISION_DATE = g.FieldSet("qualification.decision_date", "Decision date")
DM_ACCESS = g.FieldSet(
    "qualification.decision_maker_access",
    "Decision-maker access",
    ("DECISION_MAKER_ACCESS_MET", "DECISION_MAKER_ACCESS_SPONSOR"),
)
# Budget range AND decision date AND decision-maker access, before Proposal / Quote.
MOMENT_OF_TRUTH = g.AllOf((g.AllOf((BUDGET_MIN, BUDGET_MAX), "Budget range"), DECISION_DATE, DM_ACCESS))

QUALIFIED = {
    "qualification.budget_min": "100000 CNY",
    "qualification.budget_max": "150000 CNY",
    "qualification.decision_date": "2026-03-31",
    "qualification.decision_maker_access": "DECISION_MAKER_ACCESS_MET",
}


def facts(
    fields: dict[str, str] | None = None,
    evidence: tuple[str, ...] = (),
    checked: tuple[str, ...] = (),
    approvals: dict[str, str] | None = None,
) -> g.DealFacts:
    return g.DealFacts(fields or {}, frozenset(evidence), frozenset(checked), approvals or {})


LEAF_CASES = [
    ("field set", g.FieldSet("next_step"), facts({"next_step": "demo"}), True),
    ("field unset", g.FieldSet("next_step"), facts(), False),
    ("field empty text", g.FieldSet("next_step"), facts({"next_step": ""}), False),
    ("enum allowed", DM_ACCESS, facts({DM_ACCESS.path: "DECISION_MAKER_ACCESS_SPONSOR"}), True),
    ("enum not allowed", DM_ACCESS, facts({DM_ACCESS.path: "DECISION_MAKER_ACCESS_IDENTIFIED"}), False),
    ("custom field", g.FieldSet("custom_fields.tender_no"), facts({"custom_fields.tender_no": "T-1"}), True),
    ("evidence attached", g.HasEvidence("quote"), facts(evidence=("quote",)), True),
    ("evidence of another kind", g.HasEvidence("quote"), facts(evidence=("meeting_minutes",)), False),
    ("checklist ticked", g.Checked("dd_confirmed"), facts(checked=("dd_confirmed",)), True),
    ("checklist not ticked", g.Checked("dd_confirmed"), facts(), False),
    ("approval approved", g.Approved("contract"), facts(approvals={"contract": "APPROVED"}), True),
    ("approval pending", g.Approved("contract"), facts(approvals={"contract": "PENDING"}), False),
    ("approval rejected", g.Approved("contract"), facts(approvals={"contract": "REJECTED"}), False),
    ("approval never requested", g.Approved("contract"), facts(), False),
]


@pytest.mark.parametrize(
    ("name", "leaf", "given_facts", "expected"), LEAF_CASES, ids=[c[0] for c in LEAF_CASES]
)
def test_each_criterion_kind(name: str, leaf: g.Leaf, given_facts: g.DealFacts, expected: bool) -> None:
    result = g.evaluate(leaf, given_facts)
    assert result.passed is expected
    (item,) = result.items
    assert item.kind is g.leaf_kind(leaf)
    assert item.satisfied is expected
    assert (item.hint == "") is expected


def test_missing_items_say_what_would_satisfy_them() -> None:
    tree = g.AllOf(
        (
            g.FieldSet("qualification.decision_date", "Decision date"),
            g.HasEvidence("meeting_minutes", "Meeting minutes"),
            g.Checked("scope_signed", "Scope signed"),
            g.Approved("discount", "Discount approval"),
            DM_ACCESS,
        )
    )
    result = g.evaluate(
        tree, facts({DM_ACCESS.path: "DECISION_MAKER_ACCESS_NONE"}, approvals={"discount": "PENDING"})
    )
    assert not result.passed
    hints = {i.key: i.hint for i in result.missing}
    assert hints == {
        "qualification.decision_date": "set qualification.decision_date",
        "meeting_minutes": "attach evidence of type meeting_minutes",
        "scope_signed": "tick checklist item scope_signed",
        "discount": "get an approval of flow discount APPROVED (latest is PENDING)",
        DM_ACCESS.path: (
            f"set {DM_ACCESS.path} to one of DECISION_MAKER_ACCESS_MET, DECISION_MAKER_ACCESS_SPONSOR"
            " (now DECISION_MAKER_ACCESS_NONE)"
        ),
    }
    assert [i.branch for i in result.items] == [f"all_of[{n}]" for n in range(5)]


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        (QUALIFIED, []),
        (
            {},
            [
                "qualification.budget_min",
                "qualification.budget_max",
                "qualification.decision_date",
                DM_ACCESS.path,
            ],
        ),
        (
            {k: v for k, v in QUALIFIED.items() if k != "qualification.budget_max"},
            ["qualification.budget_max"],
        ),
        (
            {k: v for k, v in QUALIFIED.items() if k != "qualification.decision_date"},
            ["qualification.decision_date"],
        ),
        ({**QUALIFIED, DM_ACCESS.path: "DECISION_MAKER_ACCESS_IDENTIFIED"}, [DM_ACCESS.path]),
        ({k: v for k, v in QUALIFIED.items() if k != DM_ACCESS.path}, [DM_ACCESS.path]),
    ],
    ids=["all there", "nothing", "no budget max", "no decision date", "dm only identified", "dm unknown"],
)
def test_moment_of_truth(fields: dict[str, str], missing: list[str]) -> None:
    result = g.evaluate(MOMENT_OF_TRUTH, facts(fields))
    assert result.passed is (not missing)
    assert [i.key for i in result.missing] == missing
    assert len(result.items) == 4  # every criterion is reported, met or not


def test_or_passes_on_any_alternative_and_reports_the_one_that_did() -> None:
    tree = g.AnyOf(
        (
            g.HasEvidence("signed_requirement_confirmation"),
            g.AllOf((g.HasEvidence("meeting_minutes"), g.Checked("cio_ok"))),
        )
    )
    ok = g.evaluate(tree, facts(evidence=("meeting_minutes",), checked=("cio_ok",)))
    assert ok.passed
    assert [(i.key, i.branch) for i in ok.items] == [
        ("meeting_minutes", "any_of[1].all_of[0]"),
        ("cio_ok", "any_of[1].all_of[1]"),
    ]


def test_failed_or_lists_every_alternative_with_its_branch() -> None:
    tree = g.AnyOf(
        (
            g.HasEvidence("signed_requirement_confirmation"),
            g.AllOf((g.HasEvidence("meeting_minutes"), g.Checked("cio_ok"))),
        )
    )
    result = g.evaluate(tree, facts(evidence=("meeting_minutes",)))
    assert not result.passed
    assert [(i.key, i.branch, i.satisfied) for i in result.items] == [
        ("signed_requirement_confirmation", "any_of[0]", False),
        ("meeting_minutes", "any_of[1].all_of[0]", True),
        ("cio_ok", "any_of[1].all_of[1]", False),
    ]
    assert all("or satisfy another of: any_of[0], any_of[1]" in i.hint for i in result.missing)


def test_not_refuses_a_leaf_that_holds() -> None:
    tree = g.AllOf(
        (g.FieldSet("customer.display_name"), g.NoneOf((g.Checked("blacklisted", "Customer blacklisted"),)))
    )
    bad = g.evaluate(tree, facts({"customer.display_name": "ACME"}, checked=("blacklisted",)))
    assert not bad.passed
    (item,) = bad.missing
    assert (item.key, item.negated, item.branch, item.hint) == (
        "blacklisted",
        True,
        "all_of[1].none_of[0]",
        "untick 'Customer blacklisted'",
    )
    assert g.evaluate(tree, facts({"customer.display_name": "ACME"})).passed


def test_not_of_an_or_and_double_negation() -> None:
    either = g.AnyOf((g.HasEvidence("a"), g.HasEvidence("b")))
    neither = g.NoneOf((either,))
    assert g.evaluate(neither, facts()).passed
    assert [i.key for i in g.evaluate(neither, facts(evidence=("a", "b"))).missing] == ["a", "b"]
    double = g.NoneOf((g.NoneOf((g.HasEvidence("a"),)),))
    assert g.evaluate(double, facts(evidence=("a",))).passed
    assert [(i.key, i.negated) for i in g.evaluate(double, facts()).missing] == [("a", False)]


def test_empty_and_is_always_true() -> None:
    assert g.evaluate(g.ALWAYS, facts()).passed
    assert g.evaluate(g.ALWAYS, facts()).items == ()


# --- properties over random trees -------------------------------------------------------------------

FIELDS = ("f1", "f2", "f3")
EVIDENCE = ("e1", "e2")
CHECKS = ("c1", "c2")
FLOWS = ("a1",)

leaf_st: st.SearchStrategy[g.Node] = st.one_of(
    st.builds(g.FieldSet, st.sampled_from(FIELDS)),
    st.builds(g.FieldSet, st.sampled_from(FIELDS), st.just(""), st.just(("X",))),
    st.builds(g.HasEvidence, st.sampled_from(EVIDENCE)),
    st.builds(g.Checked, st.sampled_from(CHECKS)),
    st.builds(g.Approved, st.sampled_from(FLOWS)),
)
tree_st: st.SearchStrategy[g.Node] = st.recursive(
    leaf_st,
    lambda kids: st.one_of(
        st.builds(g.AllOf, st.lists(kids, min_size=1, max_size=3).map(tuple)),
        st.builds(g.AnyOf, st.lists(kids, min_size=1, max_size=3).map(tuple)),
        st.builds(g.NoneOf, st.lists(kids, min_size=1, max_size=3).map(tuple)),
    ),
    max_leaves=12,
)
facts_st = st.builds(
    g.DealFacts,
    st.dictionaries(st.sampled_from(FIELDS), st.sampled_from(["X", "Y"])),
    st.frozensets(st.sampled_from(EVIDENCE)),
    st.frozensets(st.sampled_from(CHECKS)),
    st.dictionaries(st.sampled_from(FLOWS), st.sampled_from(["APPROVED", "PENDING"])),
)


def truth(node: g.Node, f: g.DealFacts) -> bool:
    """The reference meaning of a tree, written the obvious way."""
    if isinstance(node, g.AllOf):
        return all(truth(c, f) for c in node.children)
    if isinstance(node, g.AnyOf):
        return any(truth(c, f) for c in node.children)
    if isinstance(node, g.NoneOf):
        return not any(truth(c, f) for c in node.children)
    return g.holds(node, f)


def leaf_at(node: g.Node, branch: str) -> g.Node:
    for step in filter(None, branch.split(".")):
        assert isinstance(node, g.AllOf | g.AnyOf | g.NoneOf)
        node = node.children[int(step.split("[")[1].rstrip("]"))]
    return node


@settings(max_examples=400, deadline=None)
@given(tree_st, facts_st)
def test_decision_matches_boolean_meaning_and_reports_explain_it(tree: g.Node, f: g.DealFacts) -> None:
    result = g.evaluate(tree, f)
    assert result.passed is truth(tree, f)
    # Refused <=> something is missing; every missing item names a real leaf whose truth is the wrong one.
    assert result.passed is (not result.missing)
    for item in result.items:
        leaf = leaf_at(tree, item.branch)
        assert isinstance(leaf, g.FieldSet | g.HasEvidence | g.Checked | g.Approved)
        assert g.leaf_key(leaf) == item.key
        assert item.satisfied is (g.holds(leaf, f) != item.negated)
        assert bool(item.hint) is (not item.satisfied)


def flip(f: g.DealFacts, item: g.Item, tree: g.Node) -> g.DealFacts:
    """Apply what a missing item asks for (set or clear its leaf)."""
    leaf = leaf_at(tree, item.branch)
    want = not item.negated
    if isinstance(leaf, g.FieldSet):
        fields = dict(f.fields)
        if want:
            fields[leaf.path] = leaf.allowed[0] if leaf.allowed else "X"
        else:
            fields.pop(leaf.path, None)
        return g.DealFacts(fields, f.evidence, f.checked, f.approvals)
    if isinstance(leaf, g.HasEvidence):
        ev = f.evidence | {leaf.evidence_type_id} if want else f.evidence - {leaf.evidence_type_id}
        return g.DealFacts(f.fields, ev, f.checked, f.approvals)
    if isinstance(leaf, g.Checked):
        ch = f.checked | {leaf.item_id} if want else f.checked - {leaf.item_id}
        return g.DealFacts(f.fields, f.evidence, ch, f.approvals)
    assert isinstance(leaf, g.Approved)
    return g.DealFacts(
        f.fields, f.evidence, f.checked, {**f.approvals, leaf.flow_id: "APPROVED" if want else "PENDING"}
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(leaf_st, min_size=1, max_size=6), facts_st)
def test_an_and_of_distinct_leaves_passes_once_every_missing_item_is_done(
    leaves: list[g.Node], f: g.DealFacts
) -> None:
    distinct: dict[tuple[g.Kind, str], g.Node] = {}
    for leaf in leaves:
        assert isinstance(leaf, g.FieldSet | g.HasEvidence | g.Checked | g.Approved)
        distinct.setdefault((g.leaf_kind(leaf), g.leaf_key(leaf)), leaf)
    tree = g.AllOf(tuple(distinct.values()))
    result = g.evaluate(tree, f)
    for item in result.missing:
        f = flip(f, item, tree)
    assert g.evaluate(tree, f).passed


def test_an_approval_criterion_of_a_flow_the_deal_does_not_meet_does_not_apply() -> None:
    small = g.DealFacts(flows_not_applicable=frozenset({"contract"}))  # e.g. under the flow's 500,000
    gate = g.AllOf((g.Approved("contract"), g.HasEvidence("quote")))
    approval, quote = g.evaluate(gate, small).items
    assert approval.satisfied and approval.hint == g.NOT_APPLICABLE
    assert not quote.satisfied
    assert g.evaluate(g.NoneOf((g.Approved("contract"),)), small).passed  # met whatever is wanted
    assert g.evaluate(g.Approved("contract"), g.DealFacts(approvals={"contract": "PENDING"})).missing
    assert g.approval_flow_ids([gate, g.AnyOf((g.Approved("other"),))]) == {"contract", "other"}
