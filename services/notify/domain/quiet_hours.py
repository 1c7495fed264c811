"""Quiet hours: when a non-critical external delivery must wait, and until when.

Times are wall-clock in the user's IANA zone; a window whose end is before its
start wraps past midnight (21:00-08:00). `days` are the weekdays a window
*starts* on (0 = Monday), empty = every day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class QuietWindow:
    start: time
    end: time
    days: frozenset[int] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("quiet hours need a start different from the end")


def _windows_around(window: QuietWindow, local: datetime, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    spans = []
    for offset in (-1, 0):
        day: date = local.date() + timedelta(days=offset)
        if window.days and day.weekday() not in window.days:
            continue
        start = datetime.combine(day, window.start, tzinfo=tz)
        end_day = day if window.end > window.start else day + timedelta(days=1)
        end = datetime.combine(end_day, window.end, tzinfo=tz)
        spans.append((start, end))
    return spans


def hold_until(
    now: datetime, window: QuietWindow | None, time_zone: str, *, critical: bool
) -> datetime | None:
    """The UTC instant a delivery due at `now` may go out, or None to send now."""
    if window is None or critical:
        return None
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    tz = ZoneInfo(time_zone)
    local = now.astimezone(tz)
    for start, end in _windows_around(window, local, tz):
        # Compare in UTC: wall-clock arithmetic across a DST change would be off by an hour.
        if start.astimezone(UTC) <= now.astimezone(UTC) < end.astimezone(UTC):
            return end.astimezone(UTC)
    return None
