"""Business calendar: a tenant's working hours, holidays and business-time arithmetic.

Shared plumbing, no domain logic. SLA deadlines, reminders, escalations and "at most
N working days" rules are computed with it, outside Temporal workflow code (which must
stay deterministic), and the resulting UTC instants are passed to timers.

Which days are working days (first matching rule wins):

1. a tenant ``extra_holidays`` date is a day off;
2. a tenant ``extra_working_dates`` date is worked, with make-up hours (see below);
3. with ``use_cn_holidays`` (the default), Chinese public holidays and make-up working
   days (调休) from the maintained ``holidays`` package (:mod:`kit.calendar.cn`): a
   holiday (e.g. every day of the National Day week, even a weekday) is a day off, a
   make-up working day (e.g. a Saturday worked in exchange) is worked with make-up
   hours; an ordinary day falls through to rule 4;
4. otherwise the weekly schedule: a weekday is worked when it has working intervals.

*Make-up hours* are the intervals of ``makeup_hours_weekday`` (Monday by default).

Years without the State Council's schedule. The package computes the statutory holidays
of any year, but the yearly schedule (bridged days off, weekend days worked) only for
the years it has been given, and the schedule for next year appears late in the year.
For a date of such a year ``beyond_cn_data`` decides, explicitly: ``"statutory"`` (the
default) counts the statutory holidays and no make-up days, logs it, and
:func:`coverage_warning` / :func:`coverage_gaps` report the gap from 60 days before
the year starts (readiness health details, tenant admin notices); ``"error"`` (strict)
raises :class:`CalendarRangeError`. A tenant covers a year by entering the published
dates as extra dates and listing the year in ``entered_schedule_years``.

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

from kit.calendar.business import (
    CALENDAR_ENV,
    DEFAULT_TIMEZONE,
    STATUTORY,
    STRICT,
    BusinessCalendar,
    calendar_from_env,
)
from kit.calendar.cn import CnYear, cn_schedule_years, cn_year
from kit.calendar.coverage import COVERAGE_HORIZON_DAYS, CoverageGap, coverage_gaps, coverage_warning
from kit.calendar.errors import CalendarConfigError, CalendarError, CalendarRangeError
from kit.calendar.hours import (
    DEFAULT_WEEKLY_HOURS,
    WEEKDAY_NAMES,
    DayHours,
    WeeklyHours,
    WorkingInterval,
    weekly_hours,
)

cn_calendar_years = cn_schedule_years  # the name from the chinese-calendar days

__all__ = [
    "CALENDAR_ENV",
    "COVERAGE_HORIZON_DAYS",
    "DEFAULT_TIMEZONE",
    "DEFAULT_WEEKLY_HOURS",
    "STATUTORY",
    "STRICT",
    "WEEKDAY_NAMES",
    "BusinessCalendar",
    "CalendarConfigError",
    "CalendarError",
    "CalendarRangeError",
    "CnYear",
    "CoverageGap",
    "DayHours",
    "WeeklyHours",
    "WorkingInterval",
    "calendar_from_env",
    "cn_calendar_years",
    "cn_schedule_years",
    "cn_year",
    "coverage_gaps",
    "coverage_warning",
    "weekly_hours",
]
