"""Feedback duties: pure rules for card uses, the feedback a use owes and the duty's reminder timeline.

A use of a card on a deal or lead opens one duty per (rep, card, subject). The
duty is due `window` after the use; reminders fall at offsets from the deadline
(negative before it, positive after it). The deadline itself is always a point of
the timeline: there the duty turns OVERDUE (an offset of 0 is that same point).
How time is added (wall clock or business time) is the caller's `shift`, so this
module stays free of calendars and clocks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

# FeedbackState / FeedbackRating / FeedbackReasonCategory values (usage.proto), as plain ints.
PENDING, OVERDUE, SUBMITTED = 1, 2, 3
FULLY, PARTLY, NOT_APPLICABLE = 1, 2, 3
RATINGS = frozenset({FULLY, PARTLY, NOT_APPLICABLE})
REASON_CATEGORIES = frozenset(range(1, 7))
OTHER_REASON = 6
OPEN_STATES = (PENDING, OVERDUE)

MAX_REASON = 1000
MAX_PAST = timedelta(days=7)
MAX_FUTURE = timedelta(minutes=5)

Shift = Callable[[datetime, timedelta], datetime]


@dataclass(frozen=True)
class Problem:
    field: str
    description: str


@dataclass(frozen=True)
class Point:
    """One point of a duty's timeline: FeedbackDue number `number` at `at`."""

    number: int  # 1, 2, ... the reminder_number of its FeedbackDue
    at: datetime
    overdue: bool  # at or after the deadline: the duty is (or turns) OVERDUE


def timeline(due: datetime, offsets: Sequence[timedelta], shift: Shift) -> list[Point]:
    """The reminders of a duty due at `due`, in time order; the deadline is always one of them."""
    instants = {due}
    for offset in offsets:
        instants.add(shift(due, offset))
    ordered = sorted(instants)
    return [Point(i, at, at >= due) for i, at in enumerate(ordered, start=1)]


def next_point(points: Sequence[Point], sent: int) -> Point | None:
    """The first point not yet sent (`sent` reminders went out), or None when all have."""
    return points[sent] if sent < len(points) else None


def latest_due(points: Sequence[Point], number: int, now: datetime) -> int:
    """The last reminder from `number` on that is due by `now` (`number` itself if none later is)."""
    later = [p.number for p in points if p.number > number and p.at <= now]
    return later[-1] if later else number


def use_time_problems(use_time: datetime, now: datetime) -> list[Problem]:
    if use_time < now - MAX_PAST:
        return [Problem("use.use_time", "at most 7 days in the past")]
    if use_time > now + MAX_FUTURE:
        return [Problem("use.use_time", "at most 5 minutes in the future")]
    return []


def feedback_problems(rating: int, category: int, reason: str) -> list[Problem]:
    """A rating is required; unless FULLY, a reason category and a free-text reason too."""
    problems: list[Problem] = []
    if rating not in RATINGS:
        problems.append(Problem("feedback.rating", "FULLY, PARTLY or NOT_APPLICABLE"))
    if category and category not in REASON_CATEGORIES:
        problems.append(Problem("feedback.reason_category", "a known reason category"))
    if len(reason) > MAX_REASON:
        problems.append(Problem("feedback.reason", f"at most {MAX_REASON} characters"))
    if rating in (PARTLY, NOT_APPLICABLE):
        if not category:
            problems.append(Problem("feedback.reason_category", "required unless the rating is FULLY"))
        if not reason.strip():
            problems.append(Problem("feedback.reason", "required unless the rating is FULLY"))
    return problems


def effective_submit_time(submit_time: datetime | None, used_at: datetime, now: datetime) -> datetime:
    """When the feedback counts as given: the device time if plausible (offline-safe), else now.

    Plausible is between the use and now (+5 minutes of clock skew); anything else is
    the server's receive time, so a wrong clock can neither hide nor fake lateness.
    """
    if submit_time is None or submit_time < used_at or submit_time > now + MAX_FUTURE:
        return now
    return min(submit_time, now)


def is_late(given_at: datetime, due: datetime) -> bool:
    return given_at > due


def same_feedback(stored: tuple[int, int, str], incoming: tuple[int, int, str]) -> bool:
    """A repeat of the same rating, category and reason is a no-op, anything else a conflict."""
    return stored[0] == incoming[0] and stored[1] == incoming[1] and stored[2].strip() == incoming[2].strip()
