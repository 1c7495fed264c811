"""The approval rules without Temporal: quorum, entry conditions, order, what a resubmission keeps, the ladder."""

from __future__ import annotations

import pytest

from services.pipeline.domain import approvals as d


@pytest.mark.parametrize(
    ("quorum", "k", "n", "need"),
    [
        ("ANY", 0, 3, 1),
        ("ALL", 0, 3, 3),
        ("ALL", 0, 0, 1),  # nobody resolved: still one decision needed (escalation / fallback supply it)
        ("COUNT", 2, 3, 2),
        ("COUNT", 5, 3, 3),  # k capped at n
        ("COUNT", 0, 3, 1),  # default one
    ],
)
def test_quorum(quorum: str, k: int, n: int, need: int) -> None:
    assert d.required_of(quorum, k, n) == need


@pytest.mark.parametrize(
    ("cond", "facts", "holds"),
    [
        (None, d.Facts(), True),
        (d.Condition(), d.Facts(), True),
        (d.Condition(min_amount_minor=50_000_000), d.Facts(amount_minor=50_000_000), True),
        (d.Condition(min_amount_minor=50_000_000), d.Facts(amount_minor=49_999_999), False),
        (d.Condition(min_discount_bps=2000), d.Facts(discount_bps=1999), False),
        (d.Condition(product_lines=["erp", "mes"]), d.Facts(product_lines=["mes"]), True),
        (d.Condition(product_lines=["erp"]), d.Facts(product_lines=["crm"]), False),
        (d.Condition(min_amount_minor=1, min_discount_bps=1), d.Facts(amount_minor=5), False),  # ANDed
    ],
)
def test_entry_conditions(cond: d.Condition | None, facts: d.Facts, holds: bool) -> None:
    assert d.holds(cond, facts) is holds


def test_order_problems() -> None:
    a, b = d.StepDef("a", "A"), d.StepDef("b", "B", after=["a"])
    assert d.order_problems([a, b]) == []
    assert d.order_problems([a, d.StepDef("a", "A2")]) == ["step key 'a' repeated"]
    assert d.order_problems([a, d.StepDef("c", "C", after=["x"])]) == ["step 'c': unknown predecessor 'x'"]
    assert d.order_problems([d.StepDef("a", "A", after=["b"]), b]) == ["steps form a cycle"]


def test_changed_fields_and_concern() -> None:
    old = d.Facts(amount_minor=1, summary="s", form={"budget": "1", "term": '"12m"'})
    new = d.Facts(amount_minor=1, summary="t", form={"budget": "2", "term": '"12m"'})
    changed = d.changed_fields(old, new)
    assert changed == {"summary", "form_values", "form_values.budget"}
    assert d.concerned(d.StepDef("x", "X", concern=["amount"]), changed) is False
    assert d.concerned(d.StepDef("x", "X", concern=["form_values.budget"]), changed) is True
    assert d.concerned(d.StepDef("x", "X"), changed) is True  # no concern listed: every field
    assert d.concerned(d.StepDef("x", "X"), set()) is False


def _run(*steps: d.StepDef, facts: d.Facts | None = None) -> d.Run:
    run = d.Run("A", "t", "f", 1, "CONTRACT", "T", "", "", "", "req", "", list(steps), facts or d.Facts())
    d.start(run, "2026-01-01T00:00:00.000000+00:00", "req")
    return run


def test_ready_skips_failed_conditions_and_chains() -> None:
    big = d.Condition(min_amount_minor=100)
    run = _run(
        d.StepDef("a", "A"), d.StepDef("b", "B", after=["a"], condition=big), d.StepDef("c", "C", after=["b"])
    )
    at = "2026-01-01T00:00:00.000000+00:00"
    assert d.ready(run, at) == ["a"]
    d.activate(run, "a", d.Opening(["u1"]), at)
    s = d.acting_step(run, "u1", "")
    assert d.approve(run, s, "u1", at, "", {}) is True
    assert d.approve(run, s, "u1", at, "", {}) is False  # a repeat is a no-op
    assert d.ready(run, at) == ["c"]  # b skipped: its condition fails
    assert run.step("b").state == d.SKIPPED
    d.activate(run, "c", d.Opening(["u2"]), at)
    d.approve(run, run.step("c"), "u2", at, "", {})
    assert d.ready(run, at) == [] and run.state == d.APPROVED


def test_checks_refuse_before_any_change() -> None:
    run = _run(d.StepDef("a", "A"))
    at = "2026-01-01T00:00:00.000000+00:00"
    d.ready(run, at)
    d.activate(run, "a", d.Opening(["u1"], acting_for={"u1": "boss"}), at)
    seq = run.seq
    for call, code in (
        (lambda: d.check_approve(run, "intruder", "", {}, ""), d.NOT_ASSIGNEE),
        (lambda: d.check_approve(run, "u1", "", {}, '"0"'), d.STALE),
        (lambda: d.check_resubmit(run, "req", ""), d.WRONG_STATE),
        (lambda: d.check_cancel(run, "u1", False, ""), d.NOT_ALLOWED),
        (lambda: d.check_delegate(run, "u1", "", "u1", ""), d.INVALID),
    ):
        with pytest.raises(d.Refused) as err:
            call()
        assert err.value.code == code
    assert run.seq == seq


def test_a_resubmission_keeps_only_steps_whose_concern_did_not_change() -> None:
    keep = d.StepDef("fin", "Finance", keep_on_resubmit=True, concern=["amount"])
    again = d.StepDef("gm", "GM")
    legal = d.StepDef("legal", "Legal")
    run = _run(keep, again, legal, facts=d.Facts(amount_minor=10, summary="v1"))
    at = "2026-01-01T00:00:00.000000+00:00"
    for key in d.ready(run, at):
        d.activate(run, key, d.Opening([f"{key}-1"]), at)
    d.approve(run, run.step("fin"), "fin-1", at, "", {})
    d.approve(run, run.step("gm"), "gm-1", at, "", {})
    d.return_for_changes(run, run.step("legal"), "legal-1", at, "cap it")
    assert run.state == d.RETURNED
    d.resubmit(run, d.Facts(amount_minor=10, summary="v2"), "req", at, "", restart_all=False)
    assert {s.key: s.state for s in run.steps} == {"fin": d.APPROVED, "gm": d.PENDING, "legal": d.PENDING}
    assert run.revision == 2


def test_the_ladder_is_due_in_order_and_the_fallback_assigns() -> None:
    step = d.StepDef("a", "A", fallback_action="ASSIGN", fallback_user_ids=["fb"], quorum="ALL")
    run = _run(step)
    at = "2026-01-01T00:00:00.000000+00:00"
    d.ready(run, at)
    t1, t2, t3 = (f"2026-01-0{n}T00:00:00.000000+00:00" for n in (2, 3, 4))
    d.activate(run, "a", d.Opening(["u1", "u2"], remind_at=t1, escalate_at=t2, fallback_at=t3), at)
    assert d.next_deadline(run) == t1
    assert d.due_now(run, t2) == [("a", "REMIND"), ("a", "ESCALATE")]
    d.reminded(run, run.step("a"), t1, None)
    d.escalated(run, run.step("a"), t2, ["boss"], assigns=False)
    assert d.next_deadline(run) == t3
    d.fell_back(run, run.step("a"), t3)
    s = run.step("a")
    assert "fb" in s.assignees and s.required == 1
    d.approve(run, s, "fb", t3, "", {})
    assert s.state == d.APPROVED
