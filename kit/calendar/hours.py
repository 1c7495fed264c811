"""Working hours: clock times, working intervals, weekly schedules, and the value checks of calendar config."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from kit.calendar.errors import CalendarConfigError

WEEKDAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_WEEKDAY_NAMES: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY: Final = timedelta(days=1)
MIDNIGHT: Final = time(0)


def _offset(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def _parse_clock(text: str, *, is_end: bool) -> time:
    """``HH:MM`` or ``HH:MM:SS``; ``24:00`` (returned as 00:00) only as an interval end."""
    raw = text.strip()
    if raw in ("24:00", "24:00:00"):
        if not is_end:
            raise CalendarConfigError(f"24:00 can only end an interval, not start one: {text!r}")
        return MIDNIGHT
    parts = raw.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise CalendarConfigError(f"not a clock time HH:MM[:SS]: {text!r}")
    try:
        hour, minute, second = (int(p) for p in [*parts, "00"][:3])
        return time(hour, minute, second)
    except ValueError as exc:
        raise CalendarConfigError(f"not a clock time HH:MM[:SS]: {text!r}") from exc


def _format_clock(t: time, *, is_end: bool) -> str:
    if is_end and t == MIDNIGHT:
        return "24:00"
    return t.strftime("%H:%M:%S" if t.second else "%H:%M")


@dataclass(frozen=True)
class WorkingInterval:
    """Local wall-clock working interval ``[start, end)``; ``end=time(0)`` means 24:00."""

    start: time
    end: time

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None:
                raise CalendarConfigError(f"WorkingInterval.{name} must be a naive datetime.time: {value!r}")
            if value.microsecond:
                raise CalendarConfigError(f"WorkingInterval.{name} has sub-second precision: {value!r}")
        if self.start_offset >= self.end_offset:
            raise CalendarConfigError(f"working interval must end after it starts: {self}")

    @classmethod
    def parse(cls, text: str) -> WorkingInterval:
        """``"09:00-18:00"``, ``"13:30-24:00"``."""
        if not isinstance(text, str) or text.count("-") != 1:
            raise CalendarConfigError(f"working interval must look like 'HH:MM-HH:MM': {text!r}")
        start, end = text.split("-")
        return cls(_parse_clock(start, is_end=False), _parse_clock(end, is_end=True))

    @property
    def start_offset(self) -> timedelta:
        """Wall-clock time since local midnight at which the interval opens."""
        return _offset(self.start)

    @property
    def end_offset(self) -> timedelta:
        """Wall-clock time since local midnight at which it closes (24 h for 24:00)."""
        return DAY if self.end == MIDNIGHT else _offset(self.end)

    def __str__(self) -> str:
        return f"{_format_clock(self.start, is_end=False)}-{_format_clock(self.end, is_end=True)}"


DayHours = tuple[WorkingInterval, ...]
WeeklyHours = tuple[DayHours, DayHours, DayHours, DayHours, DayHours, DayHours, DayHours]
"""Working intervals per weekday, Monday first (``date.weekday()`` order)."""

_NINE_TO_SIX: Final = (WorkingInterval(time(9), time(18)),)
_OFF: Final[DayHours] = ()
DEFAULT_WEEKLY_HOURS: Final[WeeklyHours] = (_NINE_TO_SIX,) * 5 + (_OFF, _OFF)
"""Monday-Friday 09:00-18:00, Saturday and Sunday off."""


def weekday_index(key: object) -> int:
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= 6:
        return key
    if isinstance(key, str):
        name = key.strip().lower()
        for names in (WEEKDAY_NAMES, _FULL_WEEKDAY_NAMES):
            if name in names:
                return names.index(name)
    raise CalendarConfigError(f"not a weekday (0-6 or mon..sun): {key!r}")


def _to_interval(item: object) -> WorkingInterval:
    if isinstance(item, WorkingInterval):
        return item
    if isinstance(item, str):
        return WorkingInterval.parse(item)
    if isinstance(item, Sequence) and len(item) == 2:
        start, end = item
        if isinstance(start, str) and isinstance(end, str):
            return WorkingInterval(_parse_clock(start, is_end=False), _parse_clock(end, is_end=True))
        if isinstance(start, time) and isinstance(end, time):
            return WorkingInterval(start, end)
    raise CalendarConfigError(f"not a working interval ('HH:MM-HH:MM' or [start, end]): {item!r}")


def normalize_day(items: Iterable[object]) -> DayHours:
    """Sort, reject overlaps, merge touching intervals (12:00-13:00 + 13:00-14:00)."""
    if isinstance(items, str | WorkingInterval):
        items = [items]
    intervals = sorted((_to_interval(i) for i in items), key=lambda iv: iv.start_offset)
    merged: list[WorkingInterval] = []
    for iv in intervals:
        if merged and iv.start_offset < merged[-1].end_offset:
            raise CalendarConfigError(f"working intervals overlap: {merged[-1]} and {iv}")
        if merged and iv.start_offset == merged[-1].end_offset:
            merged[-1] = WorkingInterval(merged[-1].start, iv.end)
        else:
            merged.append(iv)
    return tuple(merged)


def weekly_hours(days: Mapping[int | str, Iterable[WorkingInterval | str]]) -> WeeklyHours:
    """Weekly schedule from ``{weekday: intervals}``; weekdays not listed are days off.

    Keys are 0-6 (Monday = 0) or names (``"mon"``, ``"monday"``); intervals are
    :class:`WorkingInterval` or ``"HH:MM-HH:MM"`` strings, e.g.
    ``weekly_hours({d: ["09:00-12:00", "13:30-18:00"] for d in range(5)})``.
    """
    week: list[DayHours] = [() for _ in range(7)]
    seen: set[int] = set()
    for key, items in days.items():
        index = weekday_index(key)
        if index in seen:
            raise CalendarConfigError(f"weekday given twice: {key!r}")
        seen.add(index)
        week[index] = normalize_day(items)
    return tuple(week)  # type: ignore[return-value]


def to_date(value: object, what: str) -> date:
    if isinstance(value, datetime):
        raise CalendarConfigError(f"{what}: expected a date, got a datetime: {value!r}")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError as exc:
            raise CalendarConfigError(f"{what}: not an ISO date YYYY-MM-DD: {value!r}") from exc
    raise CalendarConfigError(f"{what}: expected a date or YYYY-MM-DD, got {value!r}")


def to_dates(values: object, what: str) -> frozenset[date]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise CalendarConfigError(f"{what}: expected a list of dates, got {values!r}")
    return frozenset(to_date(v, what) for v in values)


def aware_utc(instant: datetime, what: str) -> datetime:
    if not isinstance(instant, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(instant).__name__}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {instant!r}")
    return instant.astimezone(UTC)


def plain_date(day: date) -> date:
    if isinstance(day, datetime):
        raise TypeError("pass a date, not a datetime (use local_date(instant) for an instant's tenant date)")
    if not isinstance(day, date):
        raise TypeError(f"expected a date, got {type(day).__name__}")
    return day


def check_duration(duration: timedelta) -> timedelta:
    if not isinstance(duration, timedelta):
        raise TypeError(f"duration must be a timedelta, got {type(duration).__name__}")
    return duration


__all__ = [
    "DEFAULT_WEEKLY_HOURS",
    "WEEKDAY_NAMES",
    "DayHours",
    "WeeklyHours",
    "WorkingInterval",
    "aware_utc",
    "check_duration",
    "normalize_day",
    "plain_date",
    "to_date",
    "to_dates",
    "weekday_index",
    "weekly_hours",
]
