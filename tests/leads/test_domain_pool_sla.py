"""Pool rules (pool choice, claim caps, cooldown, recycling) and SLA clocks in business time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kit.calendar import BusinessCalendar
from services.leads.domain import pool as p
from services.leads.domain import sla as s

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
POOLS = (
    p.Pool("default"),
    p.Pool("east", region="east"),
    p.Pool("sh", region="east/shanghai"),
    p.Pool("fallback"),
)


@pytest.mark.parametrize(
    ("region", "pool_id"),
    [
        ("east/shanghai", "sh"),
        ("east/shanghai/pudong", "sh"),
        ("east/hangzhou", "east"),
        ("eastern", "default"),
        ("", "default"),
    ],
)
def test_pool_for_region(region: str, pool_id: str) -> None:
    assert p.pool_for_region(POOLS, region).pool_id == pool_id


RULES = p.Pool("east", private_lead_cap=3, daily_claim_cap=2, reclaim_cooldown_days=7)


@pytest.mark.parametrize(
    ("ctx", "types"),
    [
        (p.ClaimContext(0, 0, None), []),
        (p.ClaimContext(3, 0, None), ["PRIVATE_LEAD_CAP"]),
        (p.ClaimContext(3, 0, None, rep_cap_override=5), []),
        (p.ClaimContext(0, 2, None), ["DAILY_CLAIM_CAP"]),
        (p.ClaimContext(0, 0, NOW + timedelta(days=1)), ["RECLAIM_COOLDOWN"]),
        (p.ClaimContext(0, 0, NOW - timedelta(seconds=1)), []),
        (
            p.ClaimContext(5, 9, NOW + timedelta(days=1), accepting=False),
            ["NOT_ACCEPTING", "PRIVATE_LEAD_CAP", "DAILY_CLAIM_CAP", "RECLAIM_COOLDOWN"],
        ),
    ],
)
def test_claim_rules(ctx: p.ClaimContext, types: list[str]) -> None:
    assert [v.type for v in p.claim_violations(RULES, ctx, NOW)] == types


def test_no_caps_means_no_violations() -> None:
    assert p.claim_violations(p.Pool("x"), p.ClaimContext(1000, 1000, None), NOW) == []
    assert p.cooldown_until(p.Pool("x"), NOW) is None
    assert p.cooldown_until(RULES, NOW) == NOW + timedelta(days=7)


RECYCLE = p.Pool("x", recycle_rules=(p.RecycleRule("A", True, 7, 2), p.RecycleRule("C", False, 30, 5)))


@pytest.mark.parametrize(
    ("grade", "status", "exempt", "warn_days", "recycle_days"),
    [
        ("A", "ASSIGNED", False, 5, 7),
        ("A", "WORKING", False, 5, 7),
        ("A", "CONVERTED", True, None, None),
        ("A", "IN_POOL", True, None, None),
        ("B", "WORKING", True, None, None),  # no rule for B
        ("C", "WORKING", True, None, None),  # rule disabled
    ],
)
def test_recycle_plan(
    grade: str, status: str, exempt: bool, warn_days: int | None, recycle_days: int | None
) -> None:
    plan = p.recycle_plan(RECYCLE, grade, status, NOW)
    assert plan.exempt is exempt
    assert plan.warn_time == (NOW + timedelta(days=warn_days) if warn_days else None)
    assert plan.recycle_time == (NOW + timedelta(days=recycle_days) if recycle_days else None)


CAL = BusinessCalendar()  # Shanghai, Mon-Fri 09:00-18:00, CN holidays and make-up days
A = s.default_policies().for_grade("A")
B = s.default_policies().for_grade("B")


def sh(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.mark.parametrize(
    ("policy", "start", "due", "reminder"),
    [
        # Plain weekday.
        (A, "2026-03-02 10:00", "2026-03-02 11:00", "2026-03-02 10:30"),
        # Friday evening -> Monday morning, the reminder counted back in business time.
        (A, "2026-03-06 17:50", "2026-03-09 09:50", "2026-03-09 09:20"),
        (A, "2026-03-06 17:40", "2026-03-09 09:40", "2026-03-09 09:10"),
        (A, "2026-03-06 17:20", "2026-03-09 09:20", "2026-03-06 17:50"),  # reminder falls on Friday
        # Received on Saturday: the clock starts on Monday.
        (A, "2026-03-07 11:00", "2026-03-09 10:00", "2026-03-09 09:30"),
        # National Day 2025: Oct 1-8 off, Sunday Sep 28 and Saturday Oct 11 are make-up working days.
        (A, "2025-09-30 17:30", "2025-10-09 09:30", "2025-10-09 09:00"),
        (A, "2025-09-27 12:00", "2025-09-28 10:00", "2025-09-28 09:30"),  # Saturday -> make-up Sunday
        (A, "2025-10-10 17:45", "2025-10-11 09:45", "2025-10-11 09:15"),  # Friday -> make-up Saturday
        # B: 24 business hours = two 9-hour days and 6 hours (holidays skipped).
        (B, "2026-03-06 10:00", "2026-03-10 16:00", "2026-03-10 15:30"),
        (B, "2025-09-29 09:00", "2025-10-09 15:00", "2025-10-09 14:30"),
    ],
)
def test_deadlines_in_business_time(policy: s.Policy | None, start: str, due: str, reminder: str) -> None:
    assert policy is not None
    clock = s.start_clock(CAL, policy, sh(start))
    assert clock.due == sh(due)
    assert clock.reminder == sh(reminder)


def test_grade_c_has_no_sla_and_disabled_policies_do_not_apply() -> None:
    assert s.default_policies().for_grade("C") is None
    assert s.Policies((s.Policy("A", enabled=False),)).for_grade("A") is None


@pytest.mark.parametrize(
    ("types", "outcomes", "activity", "outcome", "completed", "ok"),
    [
        ((), (), "EMAIL", "SENT", True, True),
        (("CALL",), (), "CALL", "NOT_REACHED", True, True),
        (("CALL",), (), "EMAIL", "SENT", True, False),
        (("CALL",), ("REACHED", "INTERESTED"), "CALL", "NOT_REACHED", True, False),
        (("CALL",), ("REACHED",), "CALL", "REACHED", True, True),
        ((), (), "CALL", "REACHED", False, False),
    ],
)
def test_qualifying_contact(
    types: tuple[str, ...], outcomes: tuple[str, ...], activity: str, outcome: str, completed: bool, ok: bool
) -> None:
    policy = s.Policy("A", qualifying_types=types, qualifying_outcomes=outcomes)
    assert s.qualifies(policy, activity, outcome, completed) is ok


def test_breach_action_falls_back_to_pool_after_max_reassignments() -> None:
    pol = s.Policy("A", breach_action=s.REASSIGN_NEXT_REP, max_reassignments=1)
    assert s.breach_action(pol, 0) == s.REASSIGN_NEXT_REP
    assert s.breach_action(pol, 1) == s.RETURN_TO_POOL
    assert s.breach_action(s.Policy("A", breach_action=s.NONE), 5) == s.NONE


def _watch(**kw: object) -> s.WatchState:
    base: dict[str, object] = {
        "owned": True,
        "sla_state": s.PENDING,
        "reminder_time": NOW + timedelta(minutes=30),
        "due_time": NOW + timedelta(hours=1),
        "reminded": False,
        "last_touch": NOW,
        "attention_after_days": 3,
        "needs_attention": False,
        "recycle_warn_time": NOW + timedelta(days=5),
        "recycle_time": NOW + timedelta(days=7),
        "recycle_warned": False,
    }
    base.update(kw)
    return s.WatchState(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "kinds"),
    [
        ({}, [s.REMIND, s.BREACH, s.ATTENTION, s.RECYCLE_WARN, s.RECYCLE]),
        ({"reminded": True}, [s.BREACH, s.ATTENTION, s.RECYCLE_WARN, s.RECYCLE]),
        ({"sla_state": s.MET}, [s.ATTENTION, s.RECYCLE_WARN, s.RECYCLE]),
        ({"sla_state": s.MET, "needs_attention": True, "recycle_warned": True}, [s.RECYCLE]),
        ({"sla_state": s.MET, "attention_after_days": 0, "recycle_time": None}, []),
        ({"owned": False}, []),
    ],
)
def test_watch_timers(kw: dict[str, object], kinds: list[str]) -> None:
    assert [k for k, _ in s.timers(_watch(**kw))] == kinds
