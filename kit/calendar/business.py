"""The business calendar: a tenant's working days and business-time arithmetic (see the package docs)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kit.calendar.cn import cn_schedule_years, cn_year, source_version
from kit.calendar.errors import CalendarConfigError, CalendarRangeError
from kit.calendar.hours import (
    DEFAULT_WEEKLY_HOURS,
    MIDNIGHT,
    WEEKDAY_NAMES,
    DayHours,
    WeeklyHours,
    aware_utc,
    check_duration,
    normalize_day,
    plain_date,
    to_dates,
    weekday_index,
    weekly_hours,
)

log = logging.getLogger("salesops.calendar")

DEFAULT_TIMEZONE: Final = "Asia/Shanghai"
_TICK: Final = timedelta(microseconds=1)
_CACHE_MAX: Final = 20_000

_Span = tuple[datetime, datetime]

_CONFIG_KEYS: Final = frozenset(
    {
        "timezone",
        "working_hours",
        "use_cn_holidays",
        "extra_holidays",
        "extra_working_dates",
        "makeup_hours_weekday",
        "beyond_cn_data",
        "entered_schedule_years",
    }
)

STATUTORY: Final = "statutory"
STRICT: Final = "error"
# "weekly" was the old name of the lenient mode (before the statutory days were
# known for unpublished years); stored configs keep working and read as "statutory".
_MODES: Final = {"statutory": STATUTORY, "weekly": STATUTORY, "error": STRICT}


# --------------------------------------------------------------------------- calendar

_warned_years: set[int] = set()


def _warn_beyond(year: int) -> None:
    if year not in _warned_years:
        _warned_years.add(year)
        log.warning(
            "%s has no State Council holiday schedule for %d: using its statutory holidays without "
            "make-up working days, plus tenant extra dates (see kit.calendar.coverage_warning)",
            source_version(),
            year,
        )


@dataclass(frozen=True)
class BusinessCalendar:
    """A tenant's business calendar. Immutable, hashable and safe to share.

    ``timezone``: IANA zone of the tenant. ``weekly_hours``: intervals per weekday,
    Monday first (build with :func:`weekly_hours`). ``use_cn_holidays``: follow
    Chinese public holidays and make-up days (``holidays`` package, :mod:`kit.calendar.cn`).
    ``extra_holidays`` / ``extra_working_dates``: tenant exceptions (disjoint).
    ``makeup_hours_weekday``: whose hours a make-up or extra working day uses.
    ``beyond_cn_data``: what a year without the State Council's schedule means:
    ``"statutory"`` (default) counts its statutory holidays and no make-up days, and
    :func:`kit.calendar.coverage_warning` reports the gap; ``"error"`` (strict) raises
    :class:`CalendarRangeError` for any date of such a year. ``entered_schedule_years``:
    years whose schedule the tenant entered itself as extra dates; they count as covered.
    """

    timezone: str = DEFAULT_TIMEZONE
    weekly_hours: WeeklyHours = DEFAULT_WEEKLY_HOURS
    use_cn_holidays: bool = True
    extra_holidays: frozenset[date] = frozenset()
    extra_working_dates: frozenset[date] = frozenset()
    makeup_hours_weekday: int = 0
    beyond_cn_data: str = STATUTORY
    entered_schedule_years: frozenset[int] = frozenset()
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
        normalized = tuple(normalize_day(day) for day in week)
        if not any(normalized):
            raise CalendarConfigError("weekly_hours has no working interval on any weekday")
        object.__setattr__(self, "weekly_hours", normalized)

        mode = _MODES.get(self.beyond_cn_data) if isinstance(self.beyond_cn_data, str) else None
        if mode is None:
            raise CalendarConfigError(
                f"beyond_cn_data must be 'statutory' or 'error', got {self.beyond_cn_data!r}"
            )
        object.__setattr__(self, "beyond_cn_data", mode)
        years = self.entered_schedule_years
        if isinstance(years, str) or not isinstance(years, Iterable):
            raise CalendarConfigError(f"entered_schedule_years must be a list of years, got {years!r}")
        if not all(isinstance(y, int) and not isinstance(y, bool) and 1 <= y <= 9999 for y in years):
            raise CalendarConfigError(f"entered_schedule_years must hold years, got {sorted(years)!r}")
        object.__setattr__(self, "entered_schedule_years", frozenset(years))
        if not isinstance(self.use_cn_holidays, bool):
            raise CalendarConfigError(f"use_cn_holidays must be a bool, got {self.use_cn_holidays!r}")
        holidays = to_dates(self.extra_holidays, "extra_holidays")
        working = to_dates(self.extra_working_dates, "extra_working_dates")
        both = holidays & working
        if both:
            listed = ", ".join(d.isoformat() for d in sorted(both))
            raise CalendarConfigError(f"dates both extra holiday and extra working date: {listed}")
        object.__setattr__(self, "extra_holidays", holidays)
        object.__setattr__(self, "extra_working_dates", working)

        makeup = weekday_index(self.makeup_hours_weekday)
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
             "makeup_hours_weekday": "mon",
             "beyond_cn_data": "statutory", "entered_schedule_years": [2027]}

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
                kwargs[key] = to_dates(config[key], key)
        if "makeup_hours_weekday" in config:
            kwargs["makeup_hours_weekday"] = weekday_index(config["makeup_hours_weekday"])
        if "beyond_cn_data" in config:
            kwargs["beyond_cn_data"] = config["beyond_cn_data"]
        if "entered_schedule_years" in config:
            kwargs["entered_schedule_years"] = config["entered_schedule_years"]
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
            "entered_schedule_years": sorted(self.entered_schedule_years),
        }

    # ---------------------------------------------------------------- days

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    def local_date(self, instant: datetime) -> date:
        """The tenant's calendar date at ``instant``."""
        return aware_utc(instant, "instant").astimezone(self._zone).date()

    def working_hours_on(self, day: date) -> DayHours:
        """Local working intervals of a tenant date (empty on a day off)."""
        day = plain_date(day)
        if day in self.extra_holidays:
            return ()
        makeup = self.weekly_hours[self.makeup_hours_weekday]
        if day in self.extra_working_dates:
            return makeup
        if self.use_cn_holidays:
            year = cn_year(day.year)
            if not self.has_cn_schedule(day.year):
                if self.beyond_cn_data == STRICT:
                    raise self._range_error(day)
                _warn_beyond(day.year)
            if day in year.holidays:
                return ()
            if day in year.makeup_days:
                return makeup
        return self.weekly_hours[day.weekday()]

    def has_cn_schedule(self, year: int) -> bool:
        """Whether ``year``'s State Council schedule is known: in the package or entered by the tenant."""
        return year in self.entered_schedule_years or cn_year(year).has_schedule

    def is_working_day(self, day: date) -> bool:
        """Whether a tenant date has working hours."""
        return bool(self.working_hours_on(day))

    def working_intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The working intervals of a tenant date as UTC ``(start, end)`` instants."""
        return self._day_spans(plain_date(day))

    @staticmethod
    def _range_error(day: date) -> CalendarRangeError:
        years = cn_schedule_years()
        covered = f"{years[0]}-{years[1]}" if years else "no year"
        return CalendarRangeError(
            day,
            f"no State Council holiday schedule for {day.isoformat()}: {source_version()} has it for "
            f"{covered}; upgrade the holidays package, or enter the published dates as extra_holidays / "
            f"extra_working_dates and add {day.year} to entered_schedule_years, or set use_cn_holidays=False",
        )

    def _wall_to_utc(self, wall: datetime) -> datetime:
        # fold=0: an ambiguous wall time is its first occurrence; a nonexistent one
        # (inside a DST gap) is read with the pre-transition offset.
        return wall.replace(tzinfo=self._zone).astimezone(UTC)

    def _day_spans(self, day: date) -> tuple[_Span, ...]:
        cached = self._spans.get(day)
        if cached is not None:
            return cached
        midnight = datetime.combine(day, MIDNIGHT)
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
        t = aware_utc(instant, "instant")
        return any(s <= t < e for s, e in self._day_spans(self._local(t)))

    def next_working_moment(self, instant: datetime) -> datetime:
        """``instant`` itself in working time, else the next interval start (UTC)."""
        t = aware_utc(instant, "instant")
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
        t = aware_utc(start, "start")
        remaining = check_duration(duration)
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
        t = aware_utc(end, "end")
        remaining = check_duration(duration)
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
        start, stop = aware_utc(a, "a"), aware_utc(b, "b")
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
        t = aware_utc(start, "start")
        if days >= 0:
            anchor = self.next_working_moment(t)
            if days == 0:
                return anchor
            day = self._local(anchor)
        else:
            anchor = self._previous_working_end(t)
            day = self._local(anchor - _TICK)  # a 24:00 end belongs to the day it closes
        wall_offset = anchor.astimezone(self._zone).replace(tzinfo=None) - datetime.combine(day, MIDNIGHT)
        step = 1 if days > 0 else -1
        counted = 0
        while counted < abs(days):
            day = self._shift(day, step)
            if self._day_spans(day):
                counted += 1
        spans = self._day_spans(day)
        candidate = self._wall_to_utc(datetime.combine(day, MIDNIGHT) + wall_offset)
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


__all__ = ["CALENDAR_ENV", "DEFAULT_TIMEZONE", "STATUTORY", "STRICT", "BusinessCalendar", "calendar_from_env"]
