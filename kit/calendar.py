"""Business calendar: a tenant's working hours, holidays and business-time arithmetic.

Shared plumbing, no domain logic. SLA deadlines, reminders, escalations and "at most
N working days" rules are computed with it, outside Temporal workflow code (which must
stay deterministic), and the resulting UTC instants are passed to timers.

Which days are working days (first matching rule wins):

1. a tenant ``extra_holidays`` date is a day off;
2. a tenant ``extra_working_dates`` date is worked, with make-up hours (see below);
3. with ``use_cn_holidays`` (the default), the maintained ``chinese_calendar`` package
   decides Chinese public holidays and make-up working days (调休): a statutory holiday
   (e.g. every day of the National Day week, even a weekday) is a day off, a make-up
   working day (e.g. a Saturday or Sunday worked in exchange) is worked with make-up
   hours; an ordinary day falls through to rule 4;
4. otherwise the weekly schedule: a weekday is worked when it has working intervals.

*Make-up hours* are the intervals of ``makeup_hours_weekday`` (Monday by default).
Dates outside the years the package covers raise :class:`CalendarRangeError`, never a
silently wrong answer (upgrade ``chinese-calendar`` or set ``use_cn_holidays=False``).

Time model. Working intervals are local wall-clock times in the tenant's IANA zone,
half-open ``[start, end)``; ``24:00`` may end an interval. Business time is the elapsed
real time inside working intervals (on a DST day an interval spanning the change is an
hour shorter or longer). Think of ``F(t)`` as the business time accumulated up to
instant ``t``: it grows inside working intervals and is flat outside them.

* ``business_time_between(a, b) = F(b) - F(a)``: the working time in ``[a, b)``;
  zero when ``a == b`` and negative (``-between(b, a)``) when ``b < a``.
* ``add_business_time(t, d)``, ``d > 0``: the *earliest* instant with
  ``F = F(t) + d``. A start outside working time effectively begins at the next
  working moment; a result landing on an interval end stays there (ending exactly at
  18:00 gives 18:00 that day, reaching the lunch break gives 12:00, not 13:30).
* ``subtract_business_time(t, d)``, ``d > 0``: the *latest* instant with
  ``F = F(t) - d`` (30 minutes before a Monday 09:30 deadline is Monday 09:00, not
  Friday 18:00). A zero duration returns ``t`` unchanged in both; a negative one
  runs the other operation.
* ``is_working_time(t)``: ``t`` lies in some ``[start, end)``; 18:00 is not working
  time and ``next_working_moment`` of 18:00 is the next opening.
* ``add_business_days(t, n)``: see its docstring (same wall-clock time on the n-th
  working day, clamped into that day's hours).

Every operation takes timezone-aware datetimes (naive ones raise ``ValueError``) and
returns UTC. The work is done per working interval and per day, never per minute.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chinese_calendar

log = logging.getLogger("salesops.calendar")

__all__ = [
    "DEFAULT_TIMEZONE",
    "DEFAULT_WEEKLY_HOURS",
    "WEEKDAY_NAMES",
    "BusinessCalendar",
    "CalendarConfigError",
    "CalendarError",
    "CalendarRangeError",
    "WeeklyHours",
    "WorkingInterval",
    "cn_calendar_years",
    "weekly_hours",
]

DEFAULT_TIMEZONE: Final = "Asia/Shanghai"
WEEKDAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_WEEKDAY_NAMES: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY: Final = timedelta(days=1)
_TICK: Final = timedelta(microseconds=1)
_MIDNIGHT: Final = time(0)
_CACHE_MAX: Final = 20_000

_Span = tuple[datetime, datetime]


class CalendarError(Exception):
    """Base of the business calendar's errors."""


class CalendarConfigError(CalendarError, ValueError):
    """The calendar configuration is invalid (bad zone, overlapping intervals, ...)."""


class CalendarRangeError(CalendarError):
    """No reliable calendar data for a date (outside the years ``chinese_calendar`` covers)."""

    def __init__(self, day: date, message: str) -> None:
        super().__init__(message)
        self.day = day


def cn_calendar_years() -> tuple[int, int] | None:
    """First and last year the installed ``chinese_calendar`` has holiday data for."""
    try:
        from chinese_calendar import constants

        years = [d.year for d in constants.holidays]
        return (min(years), max(years)) if years else None
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - package layout changed
        return None


# --------------------------------------------------------------------------- intervals


def _offset(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def _parse_clock(text: str, *, is_end: bool) -> time:
    """``HH:MM`` or ``HH:MM:SS``; ``24:00`` (returned as 00:00) only as an interval end."""
    raw = text.strip()
    if raw in ("24:00", "24:00:00"):
        if not is_end:
            raise CalendarConfigError(f"24:00 can only end an interval, not start one: {text!r}")
        return _MIDNIGHT
    parts = raw.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise CalendarConfigError(f"not a clock time HH:MM[:SS]: {text!r}")
    try:
        hour, minute, second = (int(p) for p in [*parts, "00"][:3])
        return time(hour, minute, second)
    except ValueError as exc:
        raise CalendarConfigError(f"not a clock time HH:MM[:SS]: {text!r}") from exc


def _format_clock(t: time, *, is_end: bool) -> str:
    if is_end and t == _MIDNIGHT:
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
        return _DAY if self.end == _MIDNIGHT else _offset(self.end)

    def __str__(self) -> str:
        return f"{_format_clock(self.start, is_end=False)}-{_format_clock(self.end, is_end=True)}"


DayHours = tuple[WorkingInterval, ...]
WeeklyHours = tuple[DayHours, DayHours, DayHours, DayHours, DayHours, DayHours, DayHours]
"""Working intervals per weekday, Monday first (``date.weekday()`` order)."""

_NINE_TO_SIX: Final = (WorkingInterval(time(9), time(18)),)
_OFF: Final[DayHours] = ()
DEFAULT_WEEKLY_HOURS: Final[WeeklyHours] = (_NINE_TO_SIX,) * 5 + (_OFF, _OFF)
"""Monday-Friday 09:00-18:00, Saturday and Sunday off."""


def _weekday_index(key: object) -> int:
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


def _normalize_day(items: Iterable[object]) -> DayHours:
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
        index = _weekday_index(key)
        if index in seen:
            raise CalendarConfigError(f"weekday given twice: {key!r}")
        seen.add(index)
        week[index] = _normalize_day(items)
    return tuple(week)  # type: ignore[return-value]


def _to_date(value: object, what: str) -> date:
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


def _to_dates(values: object, what: str) -> frozenset[date]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise CalendarConfigError(f"{what}: expected a list of dates, got {values!r}")
    return frozenset(_to_date(v, what) for v in values)


def _aware_utc(instant: datetime, what: str) -> datetime:
    if not isinstance(instant, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(instant).__name__}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {instant!r}")
    return instant.astimezone(UTC)


def _plain_date(day: date) -> date:
    if isinstance(day, datetime):
        raise TypeError("pass a date, not a datetime (use local_date(instant) for an instant's tenant date)")
    if not isinstance(day, date):
        raise TypeError(f"expected a date, got {type(day).__name__}")
    return day


def _check_duration(duration: timedelta) -> timedelta:
    if not isinstance(duration, timedelta):
        raise TypeError(f"duration must be a timedelta, got {type(duration).__name__}")
    return duration


_CONFIG_KEYS: Final = frozenset(
    {
        "timezone",
        "working_hours",
        "use_cn_holidays",
        "extra_holidays",
        "extra_working_dates",
        "makeup_hours_weekday",
        "beyond_cn_data",
    }
)


# --------------------------------------------------------------------------- calendar

_warned_years: set[int] = set()


def _warn_beyond(year: int) -> None:
    if year not in _warned_years:
        _warned_years.add(year)
        log.warning(
            "chinese-calendar has no holiday data for %d: using the weekly schedule and tenant extra "
            "dates (upgrade the package once the State Council publishes %d's holidays)",
            year,
            year,
        )


@dataclass(frozen=True)
class BusinessCalendar:
    """A tenant's business calendar. Immutable, hashable and safe to share.

    ``timezone``: IANA zone of the tenant. ``weekly_hours``: intervals per weekday,
    Monday first (build with :func:`weekly_hours`). ``use_cn_holidays``: follow
    Chinese public holidays and make-up days from ``chinese_calendar``.
    ``extra_holidays`` / ``extra_working_dates``: tenant exceptions (disjoint).
    ``makeup_hours_weekday``: whose hours a make-up or extra working day uses.
    """

    timezone: str = DEFAULT_TIMEZONE
    weekly_hours: WeeklyHours = DEFAULT_WEEKLY_HOURS
    use_cn_holidays: bool = True
    extra_holidays: frozenset[date] = frozenset()
    extra_working_dates: frozenset[date] = frozenset()
    makeup_hours_weekday: int = 0
    # Years the chinese-calendar package does not cover yet (the State Council
    # publishes the next year late in the year): "weekly" falls back to the
    # weekly schedule plus the tenant's extra dates, so SLA clocks keep running
    # (ops enter the new holidays as extra dates); "error" raises CalendarRangeError.
    beyond_cn_data: str = "weekly"
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _spans: dict[date, tuple[_Span, ...]] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.timezone, str):
            raise CalendarConfigError(f"timezone must be an IANA name string, got {self.timezone!r}")
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise CalendarConfigError(f"unknown time zone: {self.timezone!r}") from exc
        object.__setattr__(self, "_zone", zone)

        week = self.weekly_hours
        if isinstance(week, Mapping):
            week = weekly_hours(week)
        if not isinstance(week, Sequence) or isinstance(week, str) or len(week) != 7:
            raise CalendarConfigError("weekly_hours must have 7 entries, Monday first")
        normalized = tuple(_normalize_day(day) for day in week)
        if not any(normalized):
            raise CalendarConfigError("weekly_hours has no working interval on any weekday")
        object.__setattr__(self, "weekly_hours", normalized)

        if self.beyond_cn_data not in ("weekly", "error"):
            raise CalendarConfigError(
                f"beyond_cn_data must be 'weekly' or 'error', got {self.beyond_cn_data!r}"
            )
        if not isinstance(self.use_cn_holidays, bool):
            raise CalendarConfigError(f"use_cn_holidays must be a bool, got {self.use_cn_holidays!r}")
        holidays = _to_dates(self.extra_holidays, "extra_holidays")
        working = _to_dates(self.extra_working_dates, "extra_working_dates")
        both = holidays & working
        if both:
            listed = ", ".join(d.isoformat() for d in sorted(both))
            raise CalendarConfigError(f"dates both extra holiday and extra working date: {listed}")
        object.__setattr__(self, "extra_holidays", holidays)
        object.__setattr__(self, "extra_working_dates", working)

        makeup = _weekday_index(self.makeup_hours_weekday)
        object.__setattr__(self, "makeup_hours_weekday", makeup)
        if (self.use_cn_holidays or working) and not normalized[makeup]:
            raise CalendarConfigError(
                f"makeup_hours_weekday {WEEKDAY_NAMES[makeup]} has no working hours; "
                "make-up and extra working days take their hours from it"
            )

    # ---------------------------------------------------------------- config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BusinessCalendar:
        """Build from a JSON-style dict; every key is optional. Example::

            {"timezone": "Asia/Shanghai",
             "working_hours": {"mon": ["09:00-12:00", "13:30-18:00"], ..., "fri": [...]},
             "use_cn_holidays": true,
             "extra_holidays": ["2025-12-31"], "extra_working_dates": ["2025-12-27"],
             "makeup_hours_weekday": "mon"}

        Weekdays absent from a given ``working_hours`` are days off; an interval is
        ``"HH:MM-HH:MM"`` or ``["HH:MM", "HH:MM"]``. Unknown keys are rejected.
        """
        if not isinstance(config, Mapping):
            raise CalendarConfigError(f"calendar config must be a mapping, got {type(config).__name__}")
        unknown = set(config) - _CONFIG_KEYS
        if unknown:
            raise CalendarConfigError(f"unknown calendar config keys: {', '.join(sorted(map(str, unknown)))}")
        kwargs: dict[str, Any] = {}
        if "timezone" in config:
            kwargs["timezone"] = config["timezone"]
        if "working_hours" in config:
            hours = config["working_hours"]
            if not isinstance(hours, Mapping):
                raise CalendarConfigError("working_hours must map weekday names to interval lists")
            kwargs["weekly_hours"] = weekly_hours(hours)
        if "use_cn_holidays" in config:
            kwargs["use_cn_holidays"] = config["use_cn_holidays"]
        for key in ("extra_holidays", "extra_working_dates"):
            if key in config:
                kwargs[key] = _to_dates(config[key], key)
        if "makeup_hours_weekday" in config:
            kwargs["makeup_hours_weekday"] = _weekday_index(config["makeup_hours_weekday"])
        if "beyond_cn_data" in config:
            kwargs["beyond_cn_data"] = config["beyond_cn_data"]
        return cls(**kwargs)

    def to_config(self) -> dict[str, Any]:
        """The JSON-ready dict :meth:`from_config` reads back to an equal calendar."""
        return {
            "timezone": self.timezone,
            "working_hours": {
                WEEKDAY_NAMES[i]: [str(iv) for iv in day] for i, day in enumerate(self.weekly_hours)
            },
            "use_cn_holidays": self.use_cn_holidays,
            "extra_holidays": [d.isoformat() for d in sorted(self.extra_holidays)],
            "extra_working_dates": [d.isoformat() for d in sorted(self.extra_working_dates)],
            "makeup_hours_weekday": WEEKDAY_NAMES[self.makeup_hours_weekday],
            "beyond_cn_data": self.beyond_cn_data,
        }

    # ---------------------------------------------------------------- days

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    def local_date(self, instant: datetime) -> date:
        """The tenant's calendar date at ``instant``."""
        return _aware_utc(instant, "instant").astimezone(self._zone).date()

    def working_hours_on(self, day: date) -> DayHours:
        """Local working intervals of a tenant date (empty on a day off)."""
        day = _plain_date(day)
        if day in self.extra_holidays:
            return ()
        makeup = self.weekly_hours[self.makeup_hours_weekday]
        if day in self.extra_working_dates:
            return makeup
        if self.use_cn_holidays:
            try:
                on_holiday, name = self._cn_detail(day)
            except CalendarRangeError:
                if self.beyond_cn_data == "error":
                    raise
                _warn_beyond(day.year)
                name = None
            if name is not None:  # a statutory holiday or a make-up working day
                return () if on_holiday else makeup
        return self.weekly_hours[day.weekday()]

    def is_working_day(self, day: date) -> bool:
        """Whether a tenant date has working hours."""
        return bool(self.working_hours_on(day))

    def working_intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The working intervals of a tenant date as UTC ``(start, end)`` instants."""
        return self._day_spans(_plain_date(day))

    def _cn_detail(self, day: date) -> tuple[bool, str | None]:
        try:
            on_holiday, name = chinese_calendar.get_holiday_detail(day)
        except NotImplementedError as exc:
            years = cn_calendar_years()
            covered = f"{years[0]}-{years[1]}" if years else "a limited range"
            version = getattr(chinese_calendar, "__version__", "?")
            raise CalendarRangeError(
                day,
                f"no Chinese holiday data for {day.isoformat()}: chinese_calendar {version} covers "
                f"{covered}; upgrade the chinese-calendar package or set use_cn_holidays=False",
            ) from exc
        return bool(on_holiday), (None if name is None else str(name))

    def _wall_to_utc(self, wall: datetime) -> datetime:
        # fold=0: an ambiguous wall time is its first occurrence; a nonexistent one
        # (inside a DST gap) is read with the pre-transition offset.
        return wall.replace(tzinfo=self._zone).astimezone(UTC)

    def _day_spans(self, day: date) -> tuple[_Span, ...]:
        cached = self._spans.get(day)
        if cached is not None:
            return cached
        midnight = datetime.combine(day, _MIDNIGHT)
        spans: list[_Span] = []
        for iv in self.working_hours_on(day):
            start = self._wall_to_utc(midnight + iv.start_offset)
            end = self._wall_to_utc(midnight + iv.end_offset)
            if spans and start < spans[-1][1]:  # only possible around a DST gap
                start = spans[-1][1]
            if end > start:
                spans.append((start, end))
        result = tuple(spans)
        if len(self._spans) >= _CACHE_MAX:
            self._spans.clear()
        self._spans[day] = result
        return result

    @staticmethod
    def _shift(day: date, days: int) -> date:
        try:
            return day + timedelta(days=days)
        except OverflowError as exc:
            raise CalendarRangeError(day, f"business calendar ran past the supported dates at {day}") from exc

    # ---------------------------------------------------------------- instants

    def is_working_time(self, instant: datetime) -> bool:
        """Whether ``instant`` lies inside a working interval ``[start, end)``."""
        t = _aware_utc(instant, "instant")
        return any(s <= t < e for s, e in self._day_spans(self._local(t)))

    def next_working_moment(self, instant: datetime) -> datetime:
        """``instant`` itself in working time, else the next interval start (UTC)."""
        t = _aware_utc(instant, "instant")
        day = self._local(t)
        while True:
            for s, e in self._day_spans(day):
                if t < e:
                    return max(s, t)
            day = self._shift(day, 1)

    def _previous_working_end(self, t: datetime) -> datetime:
        """``t`` if it lies in some ``(start, end]``, else the previous interval end."""
        day = self._local(t - _TICK)
        while True:
            for s, e in reversed(self._day_spans(day)):
                if s < t:
                    return min(e, t)
            day = self._shift(day, -1)

    def _local(self, t: datetime) -> date:
        return t.astimezone(self._zone).date()

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """The earliest instant at which ``duration`` of business time has elapsed since ``start``.

        Outside working time the clock starts at the next working moment; a result on
        an interval end stays there (Friday 17:00 + 1 h = Friday 18:00). A zero
        duration returns ``start``; a negative one subtracts.
        """
        t = _aware_utc(start, "start")
        remaining = _check_duration(duration)
        if remaining < timedelta(0):
            return self.subtract_business_time(t, -remaining)
        if not remaining:
            return t
        day = self._local(t)
        while True:
            for s, e in self._day_spans(day):
                if e <= t:
                    continue
                begin = max(s, t)
                available = e - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            day = self._shift(day, 1)

    def subtract_business_time(self, end: datetime, duration: timedelta) -> datetime:
        """The latest instant from which ``duration`` of business time elapses until ``end``.

        E.g. a reminder 30 business minutes before a deadline. A zero duration returns
        ``end``; a negative one adds.
        """
        t = _aware_utc(end, "end")
        remaining = _check_duration(duration)
        if remaining < timedelta(0):
            return self.add_business_time(t, -remaining)
        if not remaining:
            return t
        day = self._local(t)
        while True:
            for s, e in reversed(self._day_spans(day)):
                if s >= t:
                    continue
                finish = min(e, t)
                available = finish - s
                if remaining <= available:
                    return finish - remaining
                remaining -= available
            day = self._shift(day, -1)

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Working time in ``[a, b)``; zero if ``a == b``; ``-business_time_between(b, a)`` if ``b < a``."""
        start, stop = _aware_utc(a, "a"), _aware_utc(b, "b")
        if stop < start:
            return -self.business_time_between(stop, start)
        total = timedelta(0)
        if stop == start:
            return total
        day, last = self._local(start), self._local(stop - _TICK)
        while day <= last:
            for s, e in self._day_spans(day):
                lo, hi = max(s, start), min(e, stop)
                if hi > lo:
                    total += hi - lo
            day = self._shift(day, 1)
        return total

    def add_business_days(self, start: datetime, days: int) -> datetime:
        """Same local wall-clock time on the ``days``-th working day after (or before) ``start``.

        Rule, ``days > 0``: ``start`` is first moved to :meth:`next_working_moment`;
        the result is that wall-clock time on the ``days``-th working day after that
        moment's date, clamped into the target day's hours: before opening -> opening,
        in a break -> end of the break, at or after closing -> closing of that same
        day. ``days < 0``: ``start`` is first moved back to the latest moment at or
        before it that ends working time (an interval end counts: Monday 09:00 moves
        back to Friday 18:00), then the same rule applies counting backwards.
        ``days == 0`` returns :meth:`next_working_moment`. Example: Friday 17:30 + 1
        working day = Monday 17:30; Saturday 11:00 + 1 = Tuesday 09:00.
        """
        if not isinstance(days, int) or isinstance(days, bool):
            raise TypeError(f"days must be an int, got {type(days).__name__}")
        t = _aware_utc(start, "start")
        if days >= 0:
            anchor = self.next_working_moment(t)
            if days == 0:
                return anchor
            day = self._local(anchor)
        else:
            anchor = self._previous_working_end(t)
            day = self._local(anchor - _TICK)  # a 24:00 end belongs to the day it closes
        wall_offset = anchor.astimezone(self._zone).replace(tzinfo=None) - datetime.combine(day, _MIDNIGHT)
        step = 1 if days > 0 else -1
        counted = 0
        while counted < abs(days):
            day = self._shift(day, step)
            if self._day_spans(day):
                counted += 1
        spans = self._day_spans(day)
        candidate = self._wall_to_utc(datetime.combine(day, _MIDNIGHT) + wall_offset)
        for s, e in spans:
            if candidate < s:
                return s
            if candidate < e:
                return candidate
        return spans[-1][1]


CALENDAR_ENV: Final = "SALESOPS_BUSINESS_CALENDAR"


def calendar_from_env(environ: Mapping[str, str] | None = None) -> BusinessCalendar:
    """The deployment's default tenant calendar from ``SALESOPS_BUSINESS_CALENDAR``.

    The value is the JSON of :meth:`BusinessCalendar.from_config`, inline (starting
    with ``{``) or in a file named by the value; unset means Asia/Shanghai,
    Mon-Fri 09:00-18:00 with Chinese holidays and make-up days.
    """
    raw = (os.environ if environ is None else environ).get(CALENDAR_ENV, "").strip()
    if not raw:
        return BusinessCalendar()
    try:
        text = raw if raw.startswith("{") else Path(raw).read_text(encoding="utf-8")
        config = json.loads(text)
    except (OSError, ValueError) as exc:
        raise CalendarConfigError(
            f"{CALENDAR_ENV} is neither calendar JSON nor a readable JSON file: {exc}"
        ) from exc
    if not isinstance(config, Mapping):
        raise CalendarConfigError(f"{CALENDAR_ENV} must hold a JSON object")
    return BusinessCalendar.from_config(config)
