"""Does the calendar know the coming year? The check behind the health warning and the admin notice.

The State Council publishes next year's holiday schedule (bridged days off and the
weekend days worked in exchange) late in the year, and the ``holidays`` package
carries it only from its next release. Until then the calendar counts the statutory
holidays alone (or refuses, in strict mode): a deadline crossing the Spring Festival
can land on a day that turns out to be off, or skip a make-up Saturday. Nothing
here falls back silently: from ``COVERAGE_HORIZON_DAYS`` before a year starts, and for
as long as that year lacks its schedule, :func:`coverage_gaps` names the gap.

Pure functions of ``today`` and a calendar: the readiness monitor shows them in the
health details and the notify service sends them to tenant admins (keyed by
:attr:`CoverageGap.key`, so each tenant hears once per gap).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from kit.calendar.business import STRICT, BusinessCalendar
from kit.calendar.cn import cn_year, source_version

__all__ = ["COVERAGE_HORIZON_DAYS", "CoverageGap", "coverage_gaps", "coverage_warning"]

COVERAGE_HORIZON_DAYS: Final = 60


@dataclass(frozen=True)
class CoverageGap:
    """One year the calendar lacks the State Council's schedule for."""

    year: int
    days_until: int  # days from today to 1 January of `year`; <= 0 once it has begun
    strict: bool  # the calendar raises for dates of that year instead of counting statutory days only
    message: str

    @property
    def key(self) -> str:
        """Stable id of the gap, e.g. ``business-calendar:2027`` (one notice per tenant and year)."""
        return f"business-calendar:{self.year}"


def _message(year: int, days_until: int, *, strict: bool, has_holidays: bool) -> str:
    when = f"starts in {days_until} days" if days_until > 0 else "has begun"
    what = (
        "its statutory holidays but no make-up working days (调休) or bridged days off"
        if has_holidays
        else "no holidays at all"
    )
    effect = (
        f"strict calendars refuse to compute deadlines that reach into {year}"
        if strict
        else f"deadlines in {year} count only those days off and no make-up working days"
    )
    return (
        f"Business calendar: {year} {when} and the State Council's {year} holiday schedule is not in the "
        f"calendar data ({source_version()} has {what} for {year}); {effect}. Enter the published dates "
        f"as extra_holidays / extra_working_dates with {year} in entered_schedule_years, or upgrade the "
        "holidays package."
    )


def coverage_gaps(
    today: date,
    calendar: BusinessCalendar | None = None,
    *,
    horizon_days: int = COVERAGE_HORIZON_DAYS,
) -> tuple[CoverageGap, ...]:
    """Years from ``today``'s on, up to ``horizon_days`` ahead, whose schedule the calendar lacks.

    The current year counts whenever it lacks its schedule; the next one once 1 January is
    at most ``horizon_days`` away. A calendar without Chinese holidays has no gaps; a year
    the tenant entered itself (``entered_schedule_years``) is covered. ``today`` is the
    caller's date (in the tenant's zone for a tenant notice).
    """
    if isinstance(today, datetime) or not isinstance(today, date):
        raise TypeError(f"today must be a date, got {type(today).__name__}")
    cal = BusinessCalendar() if calendar is None else calendar
    if not cal.use_cn_holidays:
        return ()
    gaps: list[CoverageGap] = []
    for year in (today.year, today.year + 1):
        days_until = (date(year, 1, 1) - today).days
        if days_until > horizon_days or cal.has_cn_schedule(year):
            continue
        strict = cal.beyond_cn_data == STRICT
        has_holidays = bool(cn_year(year).holidays)
        message = _message(year, days_until, strict=strict, has_holidays=has_holidays)
        gaps.append(CoverageGap(year, days_until, strict, message))
    return tuple(gaps)


def coverage_warning(
    today: date,
    calendar: BusinessCalendar | None = None,
    *,
    horizon_days: int = COVERAGE_HORIZON_DAYS,
) -> str | None:
    """The text of :func:`coverage_gaps` (one line per year), or None when the calendar is covered."""
    gaps = coverage_gaps(today, calendar, horizon_days=horizon_days)
    return "\n".join(gap.message for gap in gaps) if gaps else None
