"""domain/duties.py: the reminder timeline, collapsing overtaken reminders, feedback checks, lateness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.knowledge.domain import duties as d

DUE = datetime(2026, 12, 9, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)


def wall(at: datetime, by: timedelta) -> datetime:
    return at + by


def test_the_deadline_is_always_a_point_and_offsets_fall_around_it() -> None:
    points = d.timeline(DUE, [-4 * H, timedelta(0)], wall)
    assert [(p.number, p.at, p.overdue) for p in points] == [(1, DUE - 4 * H, False), (2, DUE, True)]
    # No offsets: the deadline alone; offsets after it remind again, still overdue; repeats merge.
    assert [p.at for p in d.timeline(DUE, [], wall)] == [DUE]
    later = d.timeline(DUE, [24 * H, -H, -H], wall)
    assert [(p.at - DUE, p.overdue) for p in later] == [(-H, False), (timedelta(0), True), (24 * H, True)]


def test_next_and_latest_due_point() -> None:
    points = d.timeline(DUE, [-4 * H, 24 * H], wall)
    assert d.next_point(points, 0) == points[0] and d.next_point(points, 3) is None
    assert d.latest_due(points, 1, DUE - 5 * H) == 1  # nothing later is due: the one asked for
    assert d.latest_due(points, 1, DUE + H) == 2  # the deadline overtook the reminder
    assert d.latest_due(points, 1, DUE + 30 * H) == 3


def test_feedback_needs_a_reason_unless_fully() -> None:
    assert d.feedback_problems(d.FULLY, 0, "") == []
    assert [p.field for p in d.feedback_problems(0, 0, "")] == ["feedback.rating"]
    assert {p.field for p in d.feedback_problems(d.PARTLY, 0, " ")} == {
        "feedback.reason_category",
        "feedback.reason",
    }
    assert d.feedback_problems(d.NOT_APPLICABLE, d.OTHER_REASON, "旧价格") == []
    assert [p.field for p in d.feedback_problems(d.FULLY, 99, "")] == ["feedback.reason_category"]
    assert [p.field for p in d.feedback_problems(d.FULLY, 0, "x" * 1001)] == ["feedback.reason"]


def test_device_time_counts_only_when_plausible() -> None:
    used, now = DUE - 48 * H, DUE + 10 * H
    on_time = DUE - H
    assert d.effective_submit_time(on_time, used, now) == on_time  # rated offline, synced late
    assert d.effective_submit_time(None, used, now) == now
    assert d.effective_submit_time(used - H, used, now) == now  # before the use: the clock is wrong
    assert d.effective_submit_time(now + H, used, now) == now  # far in the future
    assert not d.is_late(on_time, DUE) and d.is_late(now, DUE)


def test_use_time_window() -> None:
    now = DUE
    assert d.use_time_problems(now - timedelta(days=7), now) == []
    assert d.use_time_problems(now - timedelta(days=7, seconds=1), now)
    assert d.use_time_problems(now + timedelta(minutes=5), now) == []
    assert d.use_time_problems(now + timedelta(minutes=6), now)
