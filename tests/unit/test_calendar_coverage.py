"""The calendar knows the coming year: 2027 holidays, tenant-entered schedules, the coverage warning."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from holidays.countries.china import China

from kit.calendar import (
    COVERAGE_HORIZON_DAYS,
    BusinessCalendar,
    CalendarConfigError,
    CalendarRangeError,
    cn_schedule_years,
    cn_year,
    coverage_gaps,
    coverage_warning,
)

SH = ZoneInfo("Asia/Shanghai")
H = timedelta(hours=1)
DEFAULT = BusinessCalendar()
STRICT = BusinessCalendar(beyond_cn_data="error")

_FOUND = cn_schedule_years()
assert _FOUND is not None
_YEARS: tuple[int, int] = _FOUND
NEXT = _YEARS[1] + 1  # the first year whose State Council schedule the installed data lacks
HAS_2027_SCHEDULE = cn_year(2027).has_schedule


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def utc(instant: datetime) -> datetime:
    return instant.astimezone(UTC)


def oracle_add_hours(start: datetime, hours: int) -> datetime:
    """Mon-Fri 09:00-18:00 in Shanghai over the package's own working days, one hour at a time."""
    source = China(years=range(start.year, start.year + 2))  # type: ignore[no-untyped-call]
    t = start
    while hours:
        if source.is_working_day(t.date()) and 9 <= t.hour < 18:
            hours -= 1
        t += H
    return utc(t)


# --------------------------------------------------------------------------- the data


def test_2027_statutory_holidays_are_known() -> None:
    year = cn_year(2027)
    assert date(2027, 1, 1) in year.holidays  # New Year's Day, a Friday
    for day in range(5, 11):  # New Year's Eve Feb 5 to day 3, plus two weekdays in lieu of the weekend
        assert date(2027, 2, day) in year.holidays, day
    assert date(2027, 10, 1) in year.holidays


def test_2026_has_its_schedule_with_make_up_days() -> None:
    year = cn_year(2026)
    assert year.has_schedule
    assert {date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28)} <= year.makeup_days
    assert _YEARS[1] >= 2025 and cn_year(_YEARS[1]).has_schedule and not cn_year(NEXT).has_schedule


def test_weekends_inside_a_break_are_part_of_it() -> None:
    # "October 1 to 8 off": a Saturday-working tenant is off on Oct 4 too.
    assert date(2025, 10, 4) in cn_year(2025).holidays
    assert date(2025, 11, 15) not in cn_year(2025).holidays  # an ordinary Saturday
    assert date(2025, 9, 28) in cn_year(2025).makeup_days  # a Sunday worked in exchange


# --------------------------------------------------------------------------- deadlines across 2027


def test_deadline_crossing_new_year_2027_skips_the_holiday() -> None:
    # Thursday Dec 31 17:00 + 2 business hours: Friday Jan 1 is off, then the weekend.
    assert DEFAULT.add_business_time(sh(2026, 12, 31, 17), 2 * H) == utc(sh(2027, 1, 4, 10))
    assert DEFAULT.add_business_days(sh(2026, 12, 31, 15), 1) == utc(sh(2027, 1, 4, 15))
    assert DEFAULT.business_time_between(sh(2026, 12, 31, 17), sh(2027, 1, 4, 10)) == 2 * H
    assert DEFAULT.subtract_business_time(sh(2027, 1, 4, 10), 2 * H) == utc(sh(2026, 12, 31, 17))


def test_deadline_crossing_spring_festival_2027_skips_the_holidays() -> None:
    start = sh(2027, 2, 4, 17)  # the Thursday before New Year's Eve
    deadline = DEFAULT.add_business_time(start, 2 * H)
    assert deadline == oracle_add_hours(start, 2)
    assert deadline >= utc(sh(2027, 2, 11, 10))  # Feb 5-10 are off whatever the schedule adds
    if not HAS_2027_SCHEDULE:  # the statutory days alone: back on Thursday Feb 11
        assert deadline == utc(sh(2027, 2, 11, 10))
        assert DEFAULT.add_business_days(sh(2027, 2, 4, 11), 1) == utc(sh(2027, 2, 11, 11))
        assert (
            DEFAULT.business_time_between(sh(2027, 2, 1), sh(2027, 2, 15)) == 6 * 9 * H
        )  # Feb 1-4 and 11-12


def test_long_sla_over_the_2027_spring_festival_matches_the_package() -> None:
    start = sh(2027, 1, 28, 10)
    assert DEFAULT.add_business_time(start, 40 * H) == oracle_add_hours(start, 40)


def test_tenant_entered_2027_schedule_counts_its_make_up_days() -> None:
    # What the State Council might publish: Feb 11-12 bridged, Saturday Feb 20 worked.
    cal = BusinessCalendar(
        extra_holidays=frozenset({date(2027, 2, 11), date(2027, 2, 12)}),
        extra_working_dates=frozenset({date(2027, 2, 20)}),
        entered_schedule_years=frozenset({2027}),
    )
    assert cal.add_business_time(sh(2027, 2, 4, 17), 2 * H) == utc(sh(2027, 2, 15, 10))
    assert cal.is_working_day(date(2027, 2, 20))
    # Friday Feb 19 17:00 + 2 h: the make-up Saturday is worked.
    assert cal.add_business_time(sh(2027, 2, 19, 17), 2 * H) == utc(sh(2027, 2, 20, 10))
    assert DEFAULT.add_business_time(sh(2027, 2, 19, 17), 2 * H) == oracle_add_hours(sh(2027, 2, 19, 17), 2)
    assert coverage_warning(date(2026, 12, 6), cal) is None


# --------------------------------------------------------------------------- explicit modes


def test_strict_refuses_a_year_without_schedule_unless_the_tenant_entered_it() -> None:
    first = date(NEXT, 1, 4)
    with pytest.raises(CalendarRangeError) as info:
        STRICT.is_working_day(first)
    assert info.value.day == first and "entered_schedule_years" in str(info.value)
    entered = BusinessCalendar(beyond_cn_data="error", entered_schedule_years=frozenset({NEXT}))
    assert not entered.is_working_day(date(NEXT, 1, 1))  # still the statutory New Year's Day
    assert entered.add_business_time(datetime(NEXT, 1, 5, 9, tzinfo=SH), H) is not None


def test_lenient_default_logs_the_missing_schedule(caplog: pytest.LogCaptureFixture) -> None:
    from kit.calendar import business

    business._warned_years.discard(NEXT)
    with caplog.at_level(logging.WARNING, logger="salesops.calendar"):
        BusinessCalendar().is_working_day(date(NEXT, 3, 3))
    assert any(str(NEXT) in r.getMessage() and "make-up" in r.getMessage() for r in caplog.records)


def test_modes_are_validated_and_round_trip() -> None:
    assert BusinessCalendar().beyond_cn_data == "statutory"
    assert BusinessCalendar(beyond_cn_data="weekly").beyond_cn_data == "statutory"  # the old name
    for bad in ("guess", None, 1):
        with pytest.raises(CalendarConfigError):
            BusinessCalendar(beyond_cn_data=bad)  # type: ignore[arg-type]
    for years in ("2027", [2027.5], [True]):
        with pytest.raises(CalendarConfigError):
            BusinessCalendar(entered_schedule_years=years)  # type: ignore[arg-type]
    cal = BusinessCalendar.from_config({"beyond_cn_data": "error", "entered_schedule_years": [2028, 2027]})
    assert cal.entered_schedule_years == {2027, 2028}
    assert cal.to_config()["entered_schedule_years"] == [2027, 2028]
    assert BusinessCalendar.from_config(cal.to_config()) == cal


# --------------------------------------------------------------------------- the 60-day warning


def test_warning_appears_60_days_before_the_year_and_stays_until_covered() -> None:
    new_year = date(NEXT, 1, 1)
    before = new_year - timedelta(days=COVERAGE_HORIZON_DAYS + 1)
    assert coverage_warning(before) is None
    assert coverage_gaps(before) == ()
    for today in (new_year - timedelta(days=COVERAGE_HORIZON_DAYS), new_year - timedelta(days=1)):
        gaps = coverage_gaps(today)
        assert [g.year for g in gaps] == [NEXT]
        assert gaps[0].days_until == (new_year - today).days
        assert gaps[0].key == f"business-calendar:{NEXT}"
        assert not gaps[0].strict
        text = coverage_warning(today)
        assert text is not None and str(NEXT) in text and "make-up" in text and "holidays" in text
    # Once the year has begun the warning stays, and says so.
    gaps = coverage_gaps(date(NEXT, 2, 1))
    assert [g.year for g in gaps] == [NEXT] and "has begun" in gaps[0].message


def test_warning_disappears_for_a_covered_year_and_for_calendars_without_cn_holidays() -> None:
    last = _YEARS[1]
    assert coverage_warning(date(last - 1, 12, 1)) is None  # the year ahead has its schedule
    assert coverage_warning(date(last, 6, 1)) is None  # far from the uncovered year
    today = date(NEXT - 1, 12, 6)
    assert coverage_warning(today, BusinessCalendar(use_cn_holidays=False)) is None
    assert coverage_warning(today, BusinessCalendar(entered_schedule_years=frozenset({NEXT}))) is None
    assert coverage_warning(today, horizon_days=10) is None
    strict = coverage_gaps(today, STRICT)
    assert strict[0].strict and "refuse" in strict[0].message


def test_coverage_wants_a_date() -> None:
    with pytest.raises(TypeError):
        coverage_warning(datetime(2026, 12, 6, tzinfo=SH))  # type: ignore[arg-type]
