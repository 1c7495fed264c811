"""First-response SLA in business time, and the timers that watch an owned lead.

The watch workflow asks `next_due` what to wake up for; deadlines are computed
here (in activities), never inside workflow code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from kit.calendar import BusinessCalendar

NONE = "NONE"
REASSIGN_NEXT_REP = "REASSIGN_NEXT_REP"
RETURN_TO_POOL = "RETURN_TO_POOL"

# Clock states (FirstResponseState without the prefix).
NOT_APPLICABLE = "NOT_APPLICABLE"
PENDING = "PENDING"
MET = "MET"
BREACHED = "BREACHED"
RESPONDED_LATE = "RESPONDED_LATE"
CANCELLED = "CANCELLED"

# Timer kinds of the lead watch.
REMIND = "REMIND"
BREACH = "BREACH"
ATTENTION = "ATTENTION"
RECYCLE_WARN = "RECYCLE_WARN"
RECYCLE = "RECYCLE"


@dataclass(frozen=True)
class Policy:
    grade: str
    enabled: bool = True
    window: timedelta = timedelta(hours=1)
    reminder_before: timedelta = timedelta(minutes=30)
    qualifying_types: tuple[str, ...] = ()
    qualifying_outcomes: tuple[str, ...] = ()
    escalate: bool = True
    breach_action: str = NONE
    max_reassignments: int = 1
    restart_on_reassign: bool = True


@dataclass(frozen=True)
class Policies:
    policies: tuple[Policy, ...] = ()
    attention_after_days: int = 3
    version: int = 0

    def for_grade(self, grade: str) -> Policy | None:
        p = next((p for p in self.policies if p.grade == grade), None)
        return p if p is not None and p.enabled and p.window > timedelta(0) else None


def default_policies() -> Policies:
    """Article defaults: A = call within 1 business hour, B = e-mail or call within 24, C = no rep SLA."""
    return Policies(
        (
            Policy(
                "A",
                True,
                timedelta(hours=1),
                timedelta(minutes=30),
                ("CALL",),
                (),
                True,
                REASSIGN_NEXT_REP,
                1,
            ),
            Policy(
                "B", True, timedelta(hours=24), timedelta(minutes=30), ("EMAIL", "CALL"), (), True, NONE, 1
            ),
        ),
        attention_after_days=3,
    )


@dataclass(frozen=True)
class Clock:
    start: datetime
    due: datetime
    reminder: datetime


def start_clock(calendar: BusinessCalendar, policy: Policy, start: datetime) -> Clock:
    due = calendar.add_business_time(start, policy.window)
    # The reminder counts back in business time too: 30 min before a Monday 09:10
    # deadline is Friday 17:40, while the rep is still at work.
    before = min(policy.reminder_before, policy.window)
    reminder = calendar.subtract_business_time(due, before) if before > timedelta(0) else due
    return Clock(start, due, max(reminder, start))


def qualifies(policy: Policy | None, activity_type: str, outcome: str, completed: bool) -> bool:
    """Whether an activity stops the first-response clock."""
    if not completed:
        return False
    if policy is None:
        return True
    if policy.qualifying_types and activity_type not in policy.qualifying_types:
        return False
    return not policy.qualifying_outcomes or outcome in policy.qualifying_outcomes


def breach_action(policy: Policy, reassignments_so_far: int) -> str:
    if policy.breach_action == REASSIGN_NEXT_REP and reassignments_so_far >= max(policy.max_reassignments, 0):
        return RETURN_TO_POOL
    return policy.breach_action or NONE


@dataclass(frozen=True)
class WatchState:
    """What the watch needs to know about an owned lead, read fresh from the store."""

    owned: bool
    sla_state: str
    reminder_time: datetime | None
    due_time: datetime | None
    reminded: bool
    last_touch: datetime | None  # last completed activity, else assignment
    attention_after_days: int
    needs_attention: bool
    recycle_warn_time: datetime | None
    recycle_time: datetime | None
    recycle_warned: bool


def timers(s: WatchState) -> list[tuple[str, datetime]]:
    """Every timer still to fire, earliest first; empty = nothing left to watch."""
    if not s.owned:
        return []
    out: list[tuple[str, datetime]] = []
    if s.sla_state == PENDING and s.due_time is not None:
        if not s.reminded and s.reminder_time is not None and s.reminder_time < s.due_time:
            out.append((REMIND, s.reminder_time))
        out.append((BREACH, s.due_time))
    if s.attention_after_days > 0 and not s.needs_attention and s.last_touch is not None:
        out.append((ATTENTION, s.last_touch + timedelta(days=s.attention_after_days)))
    if s.recycle_time is not None:
        if s.recycle_warn_time is not None and not s.recycle_warned and s.recycle_warn_time < s.recycle_time:
            out.append((RECYCLE_WARN, s.recycle_warn_time))
        out.append((RECYCLE, s.recycle_time))
    out.sort(key=lambda t: t[1])
    return out
