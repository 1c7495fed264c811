"""Chinese public holidays and make-up working days (调休), from the ``holidays`` package.

Two kinds of data, kept apart on purpose:

* **statutory holidays**, fixed by law (New Year's Day, Spring Festival eve and days 1-3,
  Qingming, Labour Day x2, Dragon Boat, Mid-Autumn, National Day x3) plus a weekday in
  lieu when one falls on a weekend (Art. 6 of the holiday regulation). The package
  computes them for any year from 1950 to 2100, lunar dates included, so a year the
  State Council has not published yet still has its statutory days off;
* **the State Council's yearly schedule** (国务院办公厅关于...部分节假日安排的通知): which
  weekdays are bridged into a holiday and which weekend days are worked in exchange
  (补班). It is published late each year for the next one, and the package carries it
  for the years its maintainers have entered. A year *has the schedule* when the
  package lists substituted days for it; without it the make-up working days of that
  year are unknown, and :mod:`kit.calendar.coverage` says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

from holidays import HolidayBase
from holidays.countries.china import China

__all__ = ["CnYear", "cn_schedule_years", "cn_year", "source_version"]

_LAST_YEAR = 2100  # the package's lunar tables end here
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class CnYear:
    """One year of Chinese calendar data: days off, weekend days worked, and whether the schedule is in."""

    year: int
    holidays: frozenset[date]
    makeup_days: frozenset[date]
    has_schedule: bool


def _china(years: list[int] | None = None) -> HolidayBase:
    return China(years=years or [])  # type: ignore[no-untyped-call]  # the package's __init__ is unannotated


@lru_cache(maxsize=1)
def _schedule_years() -> frozenset[int]:
    # ``special_public_holidays`` is the package's per-year table of the notices'
    # moved days; entries of 4 or 5 items are "day off moved from (month, day[,
    # year])". A missing attribute reads as "no schedule": loud, never silent.
    table = getattr(_china(), "special_public_holidays", None) or {}
    years = set()
    for year, entries in table.items():
        items = entries if entries and isinstance(entries[0], tuple) else (entries,)
        if any(len(item) >= 4 for item in items):
            years.add(int(year))
    return frozenset(years)


@lru_cache(maxsize=512)
def cn_year(year: int) -> CnYear:
    """Days off and make-up working days of ``year`` (cached; the data is immutable)."""
    has_schedule = year in _schedule_years()
    if not 1950 <= year <= _LAST_YEAR:
        return CnYear(year, frozenset(), frozenset(), has_schedule)
    # Neighbouring years too: a notice may move days across New Year (the 2006
    # schedule made Saturday 2005-12-31 a working day).
    years = [y for y in (year - 1, year, year + 1) if 1950 <= y <= _LAST_YEAR]
    source = _china(years)
    worked = frozenset(source.weekend_workdays)
    days_off = _with_enclosed_weekends(frozenset(source), worked)
    return CnYear(
        year,
        frozenset(day for day in days_off if day.year == year),
        frozenset(day for day in worked if day.year == year),
        has_schedule,
    )


def _with_enclosed_weekends(listed: frozenset[date], worked: frozenset[date]) -> frozenset[date]:
    """The listed holidays plus the Saturdays and Sundays of the same break.

    The package lists only the days a Monday-Friday worker gains; a notice's "October 1
    to 8 off" includes the weekend inside, which matters to a tenant who works
    Saturdays. A weekend day joins a break when a run of weekend days (none of them
    worked in exchange) connects it to a listed holiday.
    """

    def weekend_off(day: date) -> bool:
        return day.weekday() >= 5 and day not in worked

    days = set(listed)
    for holiday in listed:
        for step in (_ONE_DAY, -_ONE_DAY):
            day = holiday + step
            while weekend_off(day) and day not in listed:
                days.add(day)
                day += step
    return frozenset(days)


def cn_schedule_years() -> tuple[int, int] | None:
    """First and last year whose State Council schedule (make-up days) the installed package has."""
    years = _schedule_years()
    return (min(years), max(years)) if years else None


def source_version() -> str:
    """``holidays <version>``, for messages that tell an operator what to upgrade."""
    try:
        return f"holidays {version('holidays')}"
    except PackageNotFoundError:  # pragma: no cover - vendored copy
        return "holidays (unknown version)"
