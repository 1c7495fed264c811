"""Tests of kit.calendar: working days, CN holidays, business-time arithmetic, config."""

from __future__ import annotations

import dataclasses
import json
import pickle
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from holidays.countries.china import China

from kit.calendar import (
    DEFAULT_WEEKLY_HOURS,
    WEEKDAY_NAMES,
    BusinessCalendar,
    CalendarConfigError,
    CalendarRangeError,
    WorkingInterval,
    calendar_from_env,
    cn_calendar_years,
    weekly_hours,
)

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
H = timedelta(hours=1)
M = timedelta(minutes=1)
TICK = timedelta(microseconds=1)

LUNCH_DAY = ["09:00-12:00", "13:30-18:00"]  # 7.5 working hours


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=SH)


def be(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN)


DEFAULT = BusinessCalendar()
LUNCH = BusinessCalendar(weekly_hours=weekly_hours({d: LUNCH_DAY for d in range(5)}))
NO_CN = BusinessCalendar(use_cn_holidays=False)
BERLIN_CAL = BusinessCalendar(timezone="Europe/Berlin", use_cn_holidays=False)
ALWAYS_BERLIN = BusinessCalendar(
    timezone="Europe/Berlin",
    use_cn_holidays=False,
    weekly_hours=weekly_hours({d: ["00:00-24:00"] for d in range(7)}),
)

_YEARS = cn_calendar_years()
assert _YEARS is not None
CAL_YEARS: tuple[int, int] = _YEARS  # first and last year with the State Council's schedule in the data
CN_SOURCE = China(years=range(2024, 2028))  # type: ignore[no-untyped-call]  # the data source, as an oracle


def local(cal: BusinessCalendar, instant: datetime) -> datetime:
    return instant.astimezone(cal.zone)


# --------------------------------------------------------------------------- working intervals


@pytest.mark.parametrize(
    ("text", "start", "end", "shown"),
    [
        ("09:00-18:00", time(9), time(18), "09:00-18:00"),
        (" 13:30 - 18:00 ", time(13, 30), time(18), "13:30-18:00"),
        ("00:00-24:00", time(0), time(0), "00:00-24:00"),
        ("22:00-24:00:00", time(22), time(0), "22:00-24:00"),
        ("08:15:30-09:00", time(8, 15, 30), time(9), "08:15:30-09:00"),
    ],
)
def test_interval_parse(text: str, start: time, end: time, shown: str) -> None:
    iv = WorkingInterval.parse(text)
    assert (iv.start, iv.end) == (start, end)
    assert str(iv) == shown
    assert WorkingInterval.parse(str(iv)) == iv


@pytest.mark.parametrize(
    "text",
    [
        "",
        "09:00",
        "9:00-18:00",
        "09:00-18",
        "18:00-09:00",
        "09:00-09:00",
        "24:00-24:00",
        "25:00-26:00",
        "09:60-10:00",
        "aa:bb-cc:dd",
        "09:00-12:00-13:00",
        "-09:00",
    ],
)
def test_interval_parse_rejects(text: str) -> None:
    with pytest.raises(CalendarConfigError):
        WorkingInterval.parse(text)


def test_interval_offsets_and_validation() -> None:
    assert WorkingInterval(time(0), time(0)).end_offset == timedelta(days=1)
    assert WorkingInterval(time(9, 30), time(18)).start_offset == timedelta(hours=9, minutes=30)
    with pytest.raises(CalendarConfigError):
        WorkingInterval(time(9, 0, 0, 5), time(18))
    with pytest.raises(CalendarConfigError):
        WorkingInterval(time(9, tzinfo=UTC), time(18))
    with pytest.raises(CalendarConfigError):
        WorkingInterval("09:00", time(18))  # type: ignore[arg-type]
    assert isinstance(CalendarConfigError("x"), ValueError)


def test_weekly_hours_builder() -> None:
    week = weekly_hours({"mon": LUNCH_DAY, "Tuesday": ["13:30-18:00", "09:00-12:00"], 4: ["09:00-15:00"]})
    assert [str(iv) for iv in week[0]] == LUNCH_DAY
    assert week[1] == week[0]  # sorted
    assert [str(iv) for iv in week[4]] == ["09:00-15:00"]
    assert week[2] == week[3] == week[5] == week[6] == ()
    # touching intervals merge
    assert weekly_hours({0: ["09:00-12:00", "12:00-13:00"]})[0] == (WorkingInterval(time(9), time(13)),)


@pytest.mark.parametrize(
    "days",
    [
        {"mon": ["09:00-12:00", "11:00-13:00"]},  # overlap
        {"mon": ["09:00-18:00"], 0: ["09:00-18:00"]},  # same weekday twice
        {"funday": ["09:00-18:00"]},
        {7: ["09:00-18:00"]},
        {"mon": [42]},
        {"mon": [["09:00"]]},
    ],
)
def test_weekly_hours_rejects(days: Any) -> None:
    with pytest.raises(CalendarConfigError):
        weekly_hours(days)


# --------------------------------------------------------------------------- construction and config


def test_defaults() -> None:
    assert DEFAULT.timezone == "Asia/Shanghai"
    assert DEFAULT.use_cn_holidays is True
    assert DEFAULT.weekly_hours == DEFAULT_WEEKLY_HOURS
    assert [len(d) for d in DEFAULT.weekly_hours] == [1, 1, 1, 1, 1, 0, 0]
    assert str(DEFAULT.weekly_hours[0][0]) == "09:00-18:00"
    assert DEFAULT.makeup_hours_weekday == 0
    assert BusinessCalendar() == DEFAULT
    assert hash(DEFAULT) == hash(BusinessCalendar())
    assert DEFAULT != NO_CN


def test_replace_pickle_and_mapping_hours() -> None:
    berlin = dataclasses.replace(DEFAULT, timezone="Europe/Berlin", use_cn_holidays=False)
    assert berlin == BERLIN_CAL and berlin.zone == BERLIN
    clone = pickle.loads(pickle.dumps(LUNCH))
    assert clone == LUNCH and clone.add_business_time(sh(2025, 11, 17, 11), 2 * H) == sh(2025, 11, 17, 14, 30)
    by_mapping = BusinessCalendar(weekly_hours={d: LUNCH_DAY for d in range(5)})  # type: ignore[arg-type]
    assert by_mapping == LUNCH


def _bad(**kwargs: Any) -> Callable[[], object]:
    return lambda: BusinessCalendar(**kwargs)


@pytest.mark.parametrize(
    "make",
    [
        _bad(timezone="Mars/Olympus"),
        _bad(timezone=""),
        _bad(timezone=8),
        _bad(weekly_hours=((), (), (), (), (), (), ())),
        _bad(weekly_hours=DEFAULT_WEEKLY_HOURS[:5]),
        _bad(use_cn_holidays="yes"),
        _bad(extra_holidays=[datetime(2025, 12, 24, 0, 0)]),
        _bad(extra_holidays=["2025-12-24"], extra_working_dates=[date(2025, 12, 24)]),
        _bad(extra_holidays="2025-12-24"),
        _bad(makeup_hours_weekday=7),
        _bad(makeup_hours_weekday=True),
        _bad(makeup_hours_weekday="sat"),  # no hours on Saturday, but CN make-up days need some
        _bad(use_cn_holidays=False, makeup_hours_weekday=6, extra_working_dates=[date(2025, 12, 27)]),
    ],
)
def test_constructor_rejects(make: Callable[[], object]) -> None:
    with pytest.raises(CalendarConfigError):
        make()


def test_constructor_normalizes() -> None:
    cal = BusinessCalendar(
        extra_holidays={"2025-12-24"},  # type: ignore[arg-type]
        extra_working_dates=[date(2025, 12, 27)],  # type: ignore[arg-type]
        makeup_hours_weekday="fri",  # type: ignore[arg-type]
    )
    assert cal.extra_holidays == frozenset({date(2025, 12, 24)})
    assert cal.extra_working_dates == frozenset({date(2025, 12, 27)})
    assert cal.makeup_hours_weekday == 4
    hash(cal)
    # Tue-Sat schedule without CN calendar needs no make-up weekday with hours
    tue_sat = weekly_hours({d: ["10:00-19:00"] for d in range(1, 6)})
    assert BusinessCalendar(use_cn_holidays=False, weekly_hours=tue_sat).is_working_day(date(2025, 10, 4))


FULL_CONFIG: dict[str, Any] = {
    "timezone": "Asia/Shanghai",
    "working_hours": {
        "mon": LUNCH_DAY,
        "tue": LUNCH_DAY,
        "wed": LUNCH_DAY,
        "thu": LUNCH_DAY,
        "fri": ["09:00-12:00", ["13:30", "17:00"]],
        "sat": [],
        "sun": [],
    },
    "use_cn_holidays": True,
    "extra_holidays": ["2025-12-31"],
    "extra_working_dates": ["2025-12-27"],
    "makeup_hours_weekday": "mon",
}


def test_from_config_full_and_round_trip() -> None:
    cal = BusinessCalendar.from_config(json.loads(json.dumps(FULL_CONFIG)))
    assert [str(iv) for iv in cal.weekly_hours[4]] == ["09:00-12:00", "13:30-17:00"]
    assert cal.extra_holidays == frozenset({date(2025, 12, 31)})
    assert cal.extra_working_dates == frozenset({date(2025, 12, 27)})
    config = cal.to_config()
    assert json.loads(json.dumps(config)) == config
    assert BusinessCalendar.from_config(config) == cal
    assert config["working_hours"]["fri"] == ["09:00-12:00", "13:30-17:00"]
    assert config["makeup_hours_weekday"] == "mon"


def test_from_config_defaults_and_partial() -> None:
    assert BusinessCalendar.from_config({}) == DEFAULT
    assert BusinessCalendar.from_config(DEFAULT.to_config()) == DEFAULT
    berlin = BusinessCalendar.from_config({"timezone": "Europe/Berlin", "use_cn_holidays": False})
    assert berlin == BERLIN_CAL
    # weekdays absent from working_hours are days off
    only_mon = BusinessCalendar.from_config({"working_hours": {"mon": ["09:00-18:00"]}})
    assert only_mon.is_working_day(date(2025, 11, 17))
    assert not only_mon.is_working_day(date(2025, 11, 18))
    assert BusinessCalendar.from_config({"makeup_hours_weekday": 0}) == DEFAULT


@pytest.mark.parametrize(
    "config",
    [
        {"timezon": "Asia/Shanghai"},
        {"timezone": "Nowhere/Land"},
        {"working_hours": ["09:00-18:00"]},
        {"working_hours": {"mon": ["09:00-18:00", "17:00-19:00"]}},
        {"working_hours": {"xyz": ["09:00-18:00"]}},
        {"working_hours": {}},
        {"use_cn_holidays": "false"},
        {"extra_holidays": ["2025-13-01"]},
        {"extra_holidays": "2025-12-31"},
        {"extra_holidays": [20251231]},
        {"extra_holidays": ["2025-12-31"], "extra_working_dates": ["2025-12-31"]},
        {"makeup_hours_weekday": "someday"},
    ],
)
def test_from_config_rejects(config: dict[str, Any]) -> None:
    with pytest.raises(CalendarConfigError):
        BusinessCalendar.from_config(config)


def test_from_config_rejects_non_mapping() -> None:
    with pytest.raises(CalendarConfigError):
        BusinessCalendar.from_config([("timezone", "UTC")])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- working days

NATIONAL_DAY_2025 = [
    (date(2025, 9, 26), True),  # Fri
    (date(2025, 9, 27), False),  # Sat, ordinary weekend
    (date(2025, 9, 28), True),  # Sun, make-up working day
    (date(2025, 9, 29), True),
    (date(2025, 9, 30), True),
    *[(date(2025, 10, d), False) for d in range(1, 9)],  # National Day + Mid-autumn, Oct 1-8
    (date(2025, 10, 9), True),
    (date(2025, 10, 10), True),
    (date(2025, 10, 11), True),  # Sat, make-up working day
    (date(2025, 10, 12), False),  # Sun
    (date(2025, 10, 13), True),
]

SPRING_FESTIVAL_2026 = [
    (date(2026, 2, 13), True),  # Fri
    (date(2026, 2, 14), True),  # Sat, make-up working day
    *[(date(2026, 2, d), False) for d in range(15, 24)],  # Feb 15-23
    (date(2026, 2, 24), True),
    (date(2026, 2, 28), True),  # Sat, make-up working day
    (date(2026, 3, 1), False),  # Sun
]


@pytest.mark.parametrize(("day", "working"), NATIONAL_DAY_2025 + SPRING_FESTIVAL_2026, ids=str)
def test_cn_working_days(day: date, working: bool) -> None:
    assert DEFAULT.is_working_day(day) is working
    assert CN_SOURCE.is_working_day(day) is working  # the table agrees with the package


def test_cn_working_days_match_package_for_two_years() -> None:
    day = date(2025, 1, 1)
    while day <= date(2026, 12, 31):
        assert DEFAULT.is_working_day(day) == CN_SOURCE.is_working_day(day), day
        day += timedelta(days=1)


def test_make_up_days_use_makeup_weekday_hours() -> None:
    week = weekly_hours(
        {"mon": LUNCH_DAY, "tue": LUNCH_DAY, "wed": LUNCH_DAY, "thu": LUNCH_DAY, "fri": ["09:00-15:00"]}
    )
    monday_hours = BusinessCalendar(weekly_hours=week)
    friday_hours = BusinessCalendar(weekly_hours=week, makeup_hours_weekday=4)
    for day in (date(2025, 9, 28), date(2025, 10, 11), date(2026, 2, 14)):
        assert [str(iv) for iv in monday_hours.working_hours_on(day)] == LUNCH_DAY
        assert [str(iv) for iv in friday_hours.working_hours_on(day)] == ["09:00-15:00"]
    assert monday_hours.working_hours_on(date(2025, 10, 1)) == ()  # a Wednesday holiday
    assert monday_hours.working_intervals(date(2025, 9, 28)) == (
        (sh(2025, 9, 28, 9).astimezone(UTC), sh(2025, 9, 28, 12).astimezone(UTC)),
        (sh(2025, 9, 28, 13, 30).astimezone(UTC), sh(2025, 9, 28, 18).astimezone(UTC)),
    )


def test_saturday_schedule_with_cn_calendar() -> None:
    week = weekly_hours({**{d: ["09:00-18:00"] for d in range(5)}, "sat": ["10:00-16:00"]})
    cal = BusinessCalendar(weekly_hours=week)
    assert [str(iv) for iv in cal.working_hours_on(date(2025, 11, 15))] == ["10:00-16:00"]  # ordinary Sat
    assert cal.working_hours_on(date(2025, 10, 4)) == ()  # Sat inside National Day week
    assert [str(iv) for iv in cal.working_hours_on(date(2025, 10, 11))] == ["09:00-18:00"]  # make-up Sat
    assert cal.working_hours_on(date(2025, 11, 16)) == ()  # Sunday


def test_cn_calendar_off() -> None:
    assert NO_CN.is_working_day(date(2025, 10, 1))
    assert not NO_CN.is_working_day(date(2025, 9, 28))  # Sunday, make-up only in CN
    assert not NO_CN.is_working_day(date(2025, 10, 11))
    for offset in range(7):  # years without CN data are fine: the weekly schedule alone decides
        future = date(CAL_YEARS[1] + 5, 1, 1) + timedelta(days=offset)
        assert NO_CN.is_working_day(future) is (future.weekday() < 5)


def test_tenant_exceptions_take_precedence() -> None:
    cal = BusinessCalendar(
        weekly_hours=weekly_hours({d: LUNCH_DAY for d in range(5)}),
        extra_holidays=frozenset({date(2025, 12, 31), date(2025, 10, 11)}),  # Wed, CN make-up Sat
        extra_working_dates=frozenset({date(2025, 10, 8), date(2025, 12, 27)}),  # CN holiday, ordinary Sat
    )
    assert not cal.is_working_day(date(2025, 12, 31))
    assert not cal.is_working_day(date(2025, 10, 11))
    assert cal.is_working_day(date(2025, 10, 8))
    assert cal.is_working_day(date(2025, 12, 27))
    assert [str(iv) for iv in cal.working_hours_on(date(2025, 12, 27))] == LUNCH_DAY
    # Sep 30 17:00 + 2 business hours: Oct 8 is now worked
    assert cal.add_business_time(sh(2025, 9, 30, 17), 2 * H) == sh(2025, 10, 8, 10, 0).astimezone(UTC)


def test_is_working_day_wants_a_date() -> None:
    with pytest.raises(TypeError):
        DEFAULT.is_working_day(sh(2025, 11, 17, 10))
    with pytest.raises(TypeError):
        DEFAULT.is_working_day("2025-11-17")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        DEFAULT.working_intervals(datetime(2025, 11, 17))


# --------------------------------------------------------------------------- out of the package's range


def test_cn_calendar_years() -> None:
    first, last = CAL_YEARS
    assert first <= 2025 < 2026 <= last


STRICT = BusinessCalendar(beyond_cn_data="error")


@pytest.mark.parametrize("year", [CAL_YEARS[0] - 1, CAL_YEARS[1] + 1])
def test_outside_package_range_raises_when_strict(year: int) -> None:
    day = date(year, 6, 2)
    with pytest.raises(CalendarRangeError) as info:
        STRICT.is_working_day(day)
    assert info.value.day == day
    assert str(year) in str(info.value)
    assert "use_cn_holidays=False" in str(info.value)
    instant = datetime(year, 6, 2, 10, tzinfo=SH)
    for call in (
        lambda: STRICT.is_working_time(instant),
        lambda: STRICT.next_working_moment(instant),
        lambda: STRICT.add_business_time(instant, H),
        lambda: STRICT.subtract_business_time(instant, H),
        lambda: STRICT.add_business_days(instant, 1),
        lambda: STRICT.business_time_between(instant, instant + H),
    ):
        with pytest.raises(CalendarRangeError):
            call()
    assert NO_CN.add_business_time(instant, H) is not None


def test_strict_crossing_into_uncovered_year_raises_but_stopping_short_does_not() -> None:
    last = CAL_YEARS[1]
    dec31 = date(last, 12, 31)
    while not STRICT.is_working_day(dec31):
        dec31 -= timedelta(days=1)
    close = datetime.combine(dec31, time(18), SH)
    assert STRICT.add_business_time(close - H, H) == close.astimezone(UTC)
    new_year = datetime(last + 1, 1, 1, tzinfo=SH)
    assert STRICT.business_time_between(close - H, new_year) == H
    with pytest.raises(CalendarRangeError):
        STRICT.add_business_time(close - H, H + M)
    with pytest.raises(CalendarRangeError):
        STRICT.next_working_moment(close)
    with pytest.raises(CalendarRangeError):
        STRICT.business_time_between(close, new_year + M)


def test_default_falls_back_to_weekly_schedule_beyond_package_data() -> None:
    """SLA clocks keep running in a year the package does not cover yet."""
    year = CAL_YEARS[1] + 1
    monday = date(year, 6, 7)
    while monday.weekday() != 0:
        monday += timedelta(days=1)
    assert DEFAULT.is_working_day(monday)
    assert not DEFAULT.is_working_day(monday + timedelta(days=5))
    friday_close = datetime.combine(monday + timedelta(days=4), time(17, 30), SH)
    assert DEFAULT.add_business_time(friday_close, H) == datetime.combine(
        monday + timedelta(days=7), time(9, 30), SH
    ).astimezone(UTC)
    # Tenant-entered holidays for that year still apply.
    cal = BusinessCalendar(extra_holidays=frozenset({monday}))
    assert not cal.is_working_day(monday)


def test_beyond_cn_data_is_validated_and_round_trips() -> None:
    with pytest.raises(CalendarConfigError):
        BusinessCalendar(beyond_cn_data="guess")
    assert BusinessCalendar.from_config(STRICT.to_config()) == STRICT


# --------------------------------------------------------------------------- instants

WORKING_TIME = [
    (LUNCH, sh(2025, 11, 17, 8, 59, 59, 999999), False),
    (LUNCH, sh(2025, 11, 17, 9), True),
    (LUNCH, sh(2025, 11, 17, 11, 59, 59, 999999), True),
    (LUNCH, sh(2025, 11, 17, 12), False),
    (LUNCH, sh(2025, 11, 17, 13, 29), False),
    (LUNCH, sh(2025, 11, 17, 13, 30), True),
    (LUNCH, sh(2025, 11, 17, 17, 59, 59, 999999), True),
    (LUNCH, sh(2025, 11, 17, 18), False),
    (DEFAULT, sh(2025, 11, 17, 12, 30), True),
    (DEFAULT, sh(2025, 11, 15, 10), False),  # Saturday
    (DEFAULT, sh(2025, 10, 11, 10), True),  # make-up Saturday
    (DEFAULT, sh(2025, 10, 2, 10), False),  # National Day
    (NO_CN, sh(2025, 10, 2, 10), True),
    (DEFAULT, datetime(2025, 11, 17, 1, 0, tzinfo=UTC), True),  # 09:00 Shanghai
    (DEFAULT, datetime(2025, 11, 17, 0, 59, tzinfo=UTC), False),
]


@pytest.mark.parametrize(("cal", "instant", "expected"), WORKING_TIME)
def test_is_working_time(cal: BusinessCalendar, instant: datetime, expected: bool) -> None:
    assert cal.is_working_time(instant) is expected


NEXT_WORKING = [
    (LUNCH, sh(2025, 11, 17, 10, 15), sh(2025, 11, 17, 10, 15)),
    (LUNCH, sh(2025, 11, 17, 9), sh(2025, 11, 17, 9)),
    (LUNCH, sh(2025, 11, 17, 7), sh(2025, 11, 17, 9)),
    (LUNCH, sh(2025, 11, 17, 12), sh(2025, 11, 17, 13, 30)),
    (LUNCH, sh(2025, 11, 17, 12, 45), sh(2025, 11, 17, 13, 30)),
    (LUNCH, sh(2025, 11, 17, 18), sh(2025, 11, 18, 9)),
    (LUNCH, sh(2025, 11, 21, 18), sh(2025, 11, 24, 9)),  # Friday evening -> Monday
    (DEFAULT, sh(2025, 11, 15, 11), sh(2025, 11, 17, 9)),  # Saturday
    (DEFAULT, sh(2025, 9, 27, 11), sh(2025, 9, 28, 9)),  # Sat -> make-up Sunday
    (DEFAULT, sh(2025, 9, 30, 18), sh(2025, 10, 9, 9)),  # over National Day
    (DEFAULT, sh(2025, 10, 10, 18), sh(2025, 10, 11, 9)),  # -> make-up Saturday
    (DEFAULT, sh(2026, 2, 14, 18), sh(2026, 2, 24, 9)),  # over Spring Festival
    (DEFAULT, datetime(2025, 11, 16, 20, tzinfo=UTC), sh(2025, 11, 17, 9)),  # Mon 04:00 Shanghai
]


@pytest.mark.parametrize(("cal", "instant", "expected"), NEXT_WORKING)
def test_next_working_moment(cal: BusinessCalendar, instant: datetime, expected: datetime) -> None:
    result = cal.next_working_moment(instant)
    assert result == expected
    assert result.tzinfo is UTC


ADD = [
    # A-lead SLA: 1 business hour from Friday 17:30 is Monday 09:30
    (DEFAULT, sh(2025, 11, 14, 17, 30), H, sh(2025, 11, 17, 9, 30)),
    (DEFAULT, sh(2025, 11, 17, 9), 9 * H, sh(2025, 11, 17, 18)),  # ends exactly at 18:00: stays
    (DEFAULT, sh(2025, 11, 17, 17), H, sh(2025, 11, 17, 18)),
    (DEFAULT, sh(2025, 11, 17, 18), M, sh(2025, 11, 18, 9, 1)),
    (DEFAULT, sh(2025, 11, 17, 8), H, sh(2025, 11, 17, 10)),
    (DEFAULT, sh(2025, 11, 15, 10), H, sh(2025, 11, 17, 10)),  # weekend start
    (DEFAULT, sh(2025, 11, 17, 9), 24 * H, sh(2025, 11, 19, 15)),
    (DEFAULT, sh(2025, 11, 17, 9), 45 * H, sh(2025, 11, 21, 18)),  # a full week ends Friday 18:00
    (DEFAULT, sh(2025, 11, 17, 9), 45 * H + M, sh(2025, 11, 24, 9, 1)),
    (LUNCH, sh(2025, 11, 17, 11, 30), 30 * M, sh(2025, 11, 17, 12)),  # reaching lunch stays at 12:00
    (LUNCH, sh(2025, 11, 17, 11, 30), 31 * M, sh(2025, 11, 17, 13, 31)),
    (LUNCH, sh(2025, 11, 17, 12, 45), H, sh(2025, 11, 17, 14, 30)),  # start in lunch
    (LUNCH, sh(2025, 11, 17, 12), H, sh(2025, 11, 17, 14, 30)),
    (LUNCH, sh(2025, 11, 17, 9), 24 * H, sh(2025, 11, 20, 10, 30)),  # 3 x 7.5 h + 1.5 h
    (LUNCH, sh(2025, 11, 14, 17, 30), H, sh(2025, 11, 17, 9, 30)),
    # National Day 2025
    (DEFAULT, sh(2025, 9, 30, 17), 2 * H, sh(2025, 10, 9, 10)),
    (DEFAULT, sh(2025, 9, 26, 17), 2 * H, sh(2025, 9, 28, 10)),  # Friday -> make-up Sunday
    (DEFAULT, sh(2025, 9, 27, 10), H, sh(2025, 9, 28, 10)),
    (DEFAULT, sh(2025, 10, 3, 10), H, sh(2025, 10, 9, 10)),  # start inside the holiday
    (DEFAULT, sh(2025, 10, 10, 17), 2 * H, sh(2025, 10, 11, 10)),  # -> make-up Saturday
    (DEFAULT, sh(2025, 9, 28, 9), 27 * H, sh(2025, 9, 30, 18)),  # Sun+Mon+Tue: stays on Sep 30 18:00
    (DEFAULT, sh(2025, 9, 28, 9), 27 * H + M, sh(2025, 10, 9, 9, 1)),
    # Spring Festival 2026
    (DEFAULT, sh(2026, 2, 13, 17), 2 * H, sh(2026, 2, 14, 10)),
    (DEFAULT, sh(2026, 2, 14, 17), 2 * H, sh(2026, 2, 24, 10)),
    (DEFAULT, sh(2026, 2, 18, 12), 24 * H, sh(2026, 2, 26, 15)),
    # the CN calendar off: October 1st is an ordinary Wednesday
    (NO_CN, sh(2025, 9, 30, 17), 2 * H, sh(2025, 10, 1, 10)),
    # zero is the identity, even outside working time
    (DEFAULT, sh(2025, 11, 15, 10), timedelta(0), sh(2025, 11, 15, 10)),
    (DEFAULT, sh(2025, 11, 17, 18), timedelta(0), sh(2025, 11, 17, 18)),
    # negative durations subtract
    (DEFAULT, sh(2025, 11, 17, 9, 30), -30 * M, sh(2025, 11, 17, 9)),
    # sub-second precision is kept
    (DEFAULT, sh(2025, 11, 17, 17, 59, 59, 999999), 2 * TICK, sh(2025, 11, 18, 9, 0, 0, 1)),
]


@pytest.mark.parametrize(("cal", "start", "duration", "expected"), ADD)
def test_add_business_time(
    cal: BusinessCalendar, start: datetime, duration: timedelta, expected: datetime
) -> None:
    result = cal.add_business_time(start, duration)
    assert result == expected, local(cal, result)
    assert result.tzinfo is UTC
    assert cal.add_business_time(start.astimezone(UTC), duration) == result
    assert cal.add_business_time(start.astimezone(ZoneInfo("America/New_York")), duration) == result
    if duration > timedelta(0):
        assert cal.business_time_between(start, result) == duration


SUBTRACT = [
    # reminder 30 business minutes before a Monday 09:30 deadline: Monday 09:00
    (DEFAULT, sh(2025, 11, 17, 9, 30), 30 * M, sh(2025, 11, 17, 9)),
    (DEFAULT, sh(2025, 11, 17, 9, 15), 30 * M, sh(2025, 11, 14, 17, 45)),
    (DEFAULT, sh(2025, 11, 17, 9), H, sh(2025, 11, 14, 17)),
    (DEFAULT, sh(2025, 11, 17, 8), H, sh(2025, 11, 14, 17)),
    (DEFAULT, sh(2025, 11, 17, 18), 9 * H, sh(2025, 11, 17, 9)),
    (DEFAULT, sh(2025, 11, 17, 19), 30 * M, sh(2025, 11, 17, 17, 30)),
    (LUNCH, sh(2025, 11, 17, 13, 30), 30 * M, sh(2025, 11, 17, 11, 30)),
    (LUNCH, sh(2025, 11, 17, 14), 30 * M, sh(2025, 11, 17, 13, 30)),
    (LUNCH, sh(2025, 11, 17, 14), 31 * M, sh(2025, 11, 17, 11, 59)),
    (LUNCH, sh(2025, 11, 17, 12, 30), 30 * M, sh(2025, 11, 17, 11, 30)),
    (DEFAULT, sh(2025, 10, 9, 9, 10), 30 * M, sh(2025, 9, 30, 17, 40)),  # back over National Day
    (DEFAULT, sh(2025, 9, 29, 9, 30), H, sh(2025, 9, 28, 17, 30)),  # back into make-up Sunday
    (DEFAULT, sh(2026, 2, 24, 9, 30), H, sh(2026, 2, 14, 17, 30)),  # back over Spring Festival
    (DEFAULT, sh(2025, 11, 15, 10), timedelta(0), sh(2025, 11, 15, 10)),
    (DEFAULT, sh(2025, 11, 14, 17, 30), -H, sh(2025, 11, 17, 9, 30)),  # negative adds
]


@pytest.mark.parametrize(("cal", "end", "duration", "expected"), SUBTRACT)
def test_subtract_business_time(
    cal: BusinessCalendar, end: datetime, duration: timedelta, expected: datetime
) -> None:
    result = cal.subtract_business_time(end, duration)
    assert result == expected, local(cal, result)
    assert result.tzinfo is UTC
    if duration > timedelta(0):
        assert cal.business_time_between(result, end) == duration


def test_sla_deadline_and_reminder() -> None:
    created = sh(2025, 11, 14, 17, 30)
    deadline = DEFAULT.add_business_time(created, H)
    assert deadline == sh(2025, 11, 17, 9, 30)
    assert DEFAULT.subtract_business_time(deadline, 30 * M) == sh(2025, 11, 17, 9)
    # a B-lead's 24 business hours across National Day
    b_deadline = DEFAULT.add_business_time(sh(2025, 9, 29, 15), 24 * H)
    assert b_deadline == sh(2025, 10, 10, 12)  # Mon 3h + Tue 9h + Oct 9 9h + Oct 10 3h


BETWEEN = [
    (DEFAULT, sh(2025, 11, 17, 10), sh(2025, 11, 17, 12), 2 * H),
    (DEFAULT, sh(2025, 11, 17, 10), sh(2025, 11, 17, 10), timedelta(0)),
    (DEFAULT, sh(2025, 11, 17, 12), sh(2025, 11, 17, 10), -2 * H),
    (DEFAULT, sh(2025, 11, 14, 17, 30), sh(2025, 11, 17, 9, 30), H),
    (DEFAULT, sh(2025, 11, 14, 18), sh(2025, 11, 17, 9), timedelta(0)),  # the whole weekend gap
    (DEFAULT, sh(2025, 11, 15, 1), sh(2025, 11, 16, 23), timedelta(0)),
    (DEFAULT, sh(2025, 11, 17, 0), sh(2025, 11, 24, 0), 45 * H),
    (LUNCH, sh(2025, 11, 17, 0), sh(2025, 11, 24, 0), 5 * 7.5 * H),
    (LUNCH, sh(2025, 11, 17, 11), sh(2025, 11, 17, 14), 90 * M),
    (DEFAULT, sh(2025, 9, 22, 0), sh(2025, 10, 13, 0), 11 * 9 * H),  # 3 weeks containing National Day
    (NO_CN, sh(2025, 9, 22, 0), sh(2025, 10, 13, 0), 15 * 9 * H),
    (DEFAULT, sh(2026, 2, 9, 0), sh(2026, 3, 2, 0), 11 * 9 * H),  # 3 weeks around Spring Festival
    (DEFAULT, sh(2025, 1, 1, 0), sh(2026, 1, 1, 0), 248 * 9 * H),  # 2025 has 248 working days
]


@pytest.mark.parametrize(("cal", "a", "b", "expected"), BETWEEN)
def test_business_time_between(cal: BusinessCalendar, a: datetime, b: datetime, expected: timedelta) -> None:
    assert cal.business_time_between(a, b) == expected
    assert cal.business_time_between(b, a) == -expected


def test_working_days_in_2025_per_package() -> None:
    assert CN_SOURCE.get_working_days_count(date(2025, 1, 1), date(2025, 12, 31)) == 248


# --------------------------------------------------------------------------- business days

FRI_SHORT = BusinessCalendar(
    weekly_hours=weekly_hours(
        {
            "mon": ["09:00-18:00"],
            "tue": LUNCH_DAY,
            "wed": ["10:00-18:00"],
            "thu": ["09:00-18:00"],
            "fri": ["09:00-15:00"],
        }
    )
)
ALWAYS_OPEN_WEEKDAYS = BusinessCalendar(
    use_cn_holidays=False, weekly_hours=weekly_hours({d: ["00:00-24:00"] for d in range(5)})
)

ADD_DAYS = [
    (DEFAULT, sh(2025, 11, 18, 10), 2, sh(2025, 11, 20, 10)),
    (DEFAULT, sh(2025, 11, 14, 17, 30), 1, sh(2025, 11, 17, 17, 30)),
    (DEFAULT, sh(2025, 11, 15, 11), 1, sh(2025, 11, 18, 9)),  # Saturday -> Monday 09:00 -> +1
    (DEFAULT, sh(2025, 11, 14, 18), 1, sh(2025, 11, 18, 9)),  # Friday close -> Monday 09:00 -> +1
    (DEFAULT, sh(2025, 11, 17, 7), 1, sh(2025, 11, 18, 9)),
    (DEFAULT, sh(2025, 11, 17, 10), 5, sh(2025, 11, 24, 10)),
    (DEFAULT, sh(2025, 11, 15, 11), 0, sh(2025, 11, 17, 9)),  # zero: next working moment
    (DEFAULT, sh(2025, 11, 17, 11), 0, sh(2025, 11, 17, 11)),
    (DEFAULT, sh(2025, 9, 30, 10), 1, sh(2025, 10, 9, 10)),  # over National Day
    (DEFAULT, sh(2025, 9, 26, 10), 1, sh(2025, 9, 28, 10)),  # to the make-up Sunday
    (DEFAULT, sh(2025, 10, 10, 10), 1, sh(2025, 10, 11, 10)),  # to the make-up Saturday
    (DEFAULT, sh(2026, 2, 13, 16), 2, sh(2026, 2, 24, 16)),  # Spring Festival
    # clamping into the target day's hours
    (FRI_SHORT, sh(2025, 11, 20, 16), 1, sh(2025, 11, 21, 15)),  # after Friday's close -> close
    (FRI_SHORT, sh(2025, 11, 17, 12, 30), 1, sh(2025, 11, 18, 13, 30)),  # into Tuesday's lunch -> after it
    (FRI_SHORT, sh(2025, 11, 18, 9, 30), 1, sh(2025, 11, 19, 10)),  # before Wednesday's opening -> opening
    # backwards
    (DEFAULT, sh(2025, 11, 20, 10), -1, sh(2025, 11, 19, 10)),
    (DEFAULT, sh(2025, 11, 21, 18), -1, sh(2025, 11, 20, 18)),  # an interval end counts
    (DEFAULT, sh(2025, 11, 24, 9), -1, sh(2025, 11, 20, 18)),  # Monday 09:00 == Friday 18:00
    (DEFAULT, sh(2025, 11, 22, 12), -2, sh(2025, 11, 19, 18)),  # Saturday -> Friday 18:00 -> -2
    (DEFAULT, sh(2025, 10, 9, 10), -1, sh(2025, 9, 30, 10)),
    (DEFAULT, sh(2025, 9, 29, 10), -1, sh(2025, 9, 28, 10)),
    # 24:00 ends belong to the day they close
    (ALWAYS_OPEN_WEEKDAYS, sh(2025, 11, 22, 12), -1, sh(2025, 11, 21, 0)),  # Sat -> Fri 24:00 -> Thu 24:00
    (ALWAYS_OPEN_WEEKDAYS, sh(2025, 11, 20, 23), 1, sh(2025, 11, 21, 23)),
]


@pytest.mark.parametrize(("cal", "start", "days", "expected"), ADD_DAYS)
def test_add_business_days(cal: BusinessCalendar, start: datetime, days: int, expected: datetime) -> None:
    result = cal.add_business_days(start, days)
    assert result == expected, local(cal, result)
    assert result.tzinfo is UTC


@pytest.mark.parametrize("days", [1.0, True, "1"])
def test_add_business_days_wants_int(days: Any) -> None:
    with pytest.raises(TypeError):
        DEFAULT.add_business_days(sh(2025, 11, 17, 10), days)


# --------------------------------------------------------------------------- other zones and DST


def test_berlin_cn_off_across_spring_dst() -> None:
    # Europe/Berlin moves 02:00 CET -> 03:00 CEST on Sunday 2025-03-30
    start = be(2025, 3, 28, 17)
    result = BERLIN_CAL.add_business_time(start, 2 * H)
    assert result == be(2025, 3, 31, 10)
    assert result == datetime(2025, 3, 31, 8, tzinfo=UTC)
    assert BERLIN_CAL.business_time_between(start, result) == 2 * H
    assert BERLIN_CAL.subtract_business_time(result, 2 * H) == start
    assert BERLIN_CAL.add_business_days(be(2025, 3, 28, 10), 1) == be(2025, 3, 31, 10)
    assert BERLIN_CAL.business_time_between(be(2025, 3, 24), be(2025, 4, 7)) == 90 * H


def test_berlin_cn_off_across_autumn_dst() -> None:
    start = be(2025, 10, 24, 17)
    result = BERLIN_CAL.add_business_time(start, 2 * H)
    assert result == be(2025, 10, 27, 10)
    assert result == datetime(2025, 10, 27, 9, tzinfo=UTC)
    assert BERLIN_CAL.is_working_day(date(2025, 10, 1))  # no CN holidays here
    assert BERLIN_CAL.next_working_moment(datetime(2025, 10, 27, 7, 59, tzinfo=UTC)) == be(2025, 10, 27, 9)


def test_round_the_clock_calendar_on_dst_days() -> None:
    spring = ALWAYS_BERLIN.business_time_between(be(2025, 3, 30), be(2025, 3, 31))
    autumn = ALWAYS_BERLIN.business_time_between(be(2025, 10, 26), be(2025, 10, 27))
    assert (spring, autumn) == (23 * H, 25 * H)
    assert ALWAYS_BERLIN.add_business_time(be(2025, 3, 30), 23 * H) == be(2025, 3, 31)
    assert ALWAYS_BERLIN.add_business_time(be(2025, 3, 29, 12), 48 * H) == be(2025, 3, 31, 13)
    assert ALWAYS_BERLIN.is_working_time(be(2025, 3, 30, 3))
    assert ALWAYS_BERLIN.working_intervals(date(2025, 10, 26)) == (
        (datetime(2025, 10, 25, 22, tzinfo=UTC), datetime(2025, 10, 26, 23, tzinfo=UTC)),
    )


def test_interval_inside_dst_gap_is_shortened() -> None:
    cal = BusinessCalendar(
        timezone="Europe/Berlin",
        use_cn_holidays=False,
        weekly_hours=weekly_hours({d: ["01:00-02:30", "02:30-04:00"] for d in range(7)}),
    )
    # merged to 01:00-04:00 wall time; on 2025-03-30 that is 01:00 CET -> 04:00 CEST = 2 real hours
    assert cal.business_time_between(be(2025, 3, 30), be(2025, 3, 31)) == 2 * H
    assert cal.business_time_between(be(2025, 3, 29), be(2025, 3, 30)) == 3 * H
    gap = BusinessCalendar(
        timezone="Europe/Berlin",
        use_cn_holidays=False,
        weekly_hours=weekly_hours({d: ["01:00-02:10", "02:20-02:40", "02:50-04:00"] for d in range(7)}),
    )
    spans = gap.working_intervals(date(2025, 3, 30))
    assert all(s < e for s, e in spans)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))


# --------------------------------------------------------------------------- input validation

OPERATIONS: list[Callable[[datetime], object]] = [
    DEFAULT.is_working_time,
    DEFAULT.next_working_moment,
    DEFAULT.local_date,
    lambda t: DEFAULT.add_business_time(t, H),
    lambda t: DEFAULT.subtract_business_time(t, H),
    lambda t: DEFAULT.add_business_days(t, 1),
    lambda t: DEFAULT.business_time_between(t, sh(2025, 11, 17, 10)),
    lambda t: DEFAULT.business_time_between(sh(2025, 11, 17, 10), t),
]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_naive_datetimes_rejected(operation: Callable[[datetime], object]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        operation(datetime(2025, 11, 17, 10))
    with pytest.raises(TypeError):
        operation(date(2025, 11, 17))  # type: ignore[arg-type]


def test_durations_must_be_timedeltas() -> None:
    with pytest.raises(TypeError):
        DEFAULT.add_business_time(sh(2025, 11, 17, 10), 3600)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        DEFAULT.subtract_business_time(sh(2025, 11, 17, 10), 3600)  # type: ignore[arg-type]


def test_local_date_uses_tenant_zone() -> None:
    instant = datetime(2025, 11, 16, 20, tzinfo=UTC)
    assert DEFAULT.local_date(instant) == date(2025, 11, 17)
    assert BERLIN_CAL.local_date(instant) == date(2025, 11, 16)


# --------------------------------------------------------------------------- efficiency


def _count_day_lookups(monkeypatch: pytest.MonkeyPatch) -> list[date]:
    seen: list[date] = []
    original = BusinessCalendar._day_spans

    def counting(self: BusinessCalendar, day: date) -> tuple[tuple[datetime, datetime], ...]:
        seen.append(day)
        return original(self, day)

    monkeypatch.setattr(BusinessCalendar, "_day_spans", counting)
    return seen


def test_long_durations_iterate_per_day(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _count_day_lookups(monkeypatch)
    cal = BusinessCalendar(weekly_hours=weekly_hours({d: LUNCH_DAY for d in range(5)}))
    start = sh(2025, 1, 2, 10)
    cal.add_business_time(start, 24 * H)
    assert len(seen) <= 6
    seen.clear()
    end = cal.add_business_time(start, 2000 * H)
    days = (local(cal, end).date() - date(2025, 1, 2)).days + 1
    assert len(seen) == days < 450  # one lookup per calendar day, not per minute
    seen.clear()
    assert cal.business_time_between(start, end) == 2000 * H
    assert len(seen) == days
    seen.clear()
    assert cal.subtract_business_time(end, 2000 * H) == start
    assert len(seen) == days


# --------------------------------------------------------------------------- seeded property sweep

SWEEP_CAL = BusinessCalendar(
    weekly_hours=weekly_hours({**{d: LUNCH_DAY for d in range(4)}, "fri": ["09:00-12:00", "13:00-17:00"]}),
    extra_holidays=frozenset({date(2025, 12, 31), date(2025, 5, 20)}),
    extra_working_dates=frozenset({date(2025, 12, 27), date(2025, 10, 8)}),
)
SWEEP_BERLIN = BusinessCalendar(
    timezone="Europe/Berlin",
    use_cn_holidays=False,
    weekly_hours=weekly_hours({d: ["08:00-12:30", "13:15-17:45"] for d in range(5)}),
    extra_holidays=frozenset({date(2025, 12, 25), date(2025, 12, 26)}),
)


def _random_instant(rng: random.Random, cal: BusinessCalendar, lo: date, span_days: int) -> datetime:
    day = lo + timedelta(days=rng.randrange(span_days))
    spans = cal.working_intervals(day)
    roll = rng.random()
    if spans and roll < 0.3:  # exactly on a boundary, or one microsecond off it
        s, e = rng.choice(spans)
        return rng.choice([s, e]) + rng.choice([timedelta(0), timedelta(0), TICK, -TICK])
    wall = datetime.combine(day, time()) + timedelta(seconds=rng.randrange(86400))
    if roll < 0.6:
        wall = wall.replace(second=0)
    else:
        wall += timedelta(microseconds=rng.randrange(1_000_000))
    return wall.replace(tzinfo=cal.zone).astimezone(UTC)


def _random_duration(rng: random.Random) -> timedelta:
    kind = rng.random()
    if kind < 0.3:
        return timedelta(minutes=rng.randrange(1, 600))
    if kind < 0.5:
        return timedelta(hours=rng.choice([1, 3, 7.5, 9, 24, 48, 100]))
    if kind < 0.6:
        return timedelta(microseconds=rng.randrange(1, 10**6))
    return timedelta(seconds=rng.randrange(1, 400 * 3600))


def _ends_working(cal: BusinessCalendar, t: datetime) -> bool:
    """t lies in some (start, end]."""
    return cal.is_working_time(t - TICK)


@pytest.mark.parametrize(
    ("cal", "lo", "span_days", "cases"),
    [
        (SWEEP_CAL, date(2024, 1, 1), 365 * 2 + 120, 2500),
        (DEFAULT, date(2025, 9, 1), 60, 800),
        (SWEEP_BERLIN, date(2024, 1, 1), 365 * 3, 1500),
    ],
    ids=["shanghai-lunch-exceptions", "shanghai-national-day", "berlin-dst"],
)
def test_property_sweep(cal: BusinessCalendar, lo: date, span_days: int, cases: int) -> None:
    rng = random.Random(20251001 + cases)
    zero = timedelta(0)
    for _ in range(cases):
        a = _random_instant(rng, cal, lo, span_days)
        if rng.random() < 0.2:  # far apart
            b = _random_instant(rng, cal, lo, span_days)
            c = _random_instant(rng, cal, lo, span_days)
        else:  # within a few weeks, often the same day
            near = cal.local_date(a) - timedelta(days=rng.choice([0, 0, 3, 10, 30]))
            b = _random_instant(rng, cal, near, 2 * (cal.local_date(a) - near).days + 1)
            c = _random_instant(rng, cal, near, 2 * (cal.local_date(a) - near).days + 1)
        d, d2 = _random_duration(rng), _random_duration(rng)
        ctx = (a, b, c, d, d2)

        # add / subtract are inverse in business time
        r = cal.add_business_time(a, d)
        assert r > a and cal.business_time_between(a, r) == d, ctx
        assert _ends_working(cal, r), ctx
        assert cal.subtract_business_time(r, d) == cal.next_working_moment(a), ctx
        assert cal.add_business_time(r, d2) == cal.add_business_time(a, d + d2), ctx
        s = cal.subtract_business_time(b, d)
        assert s < b and cal.business_time_between(s, b) == d, ctx
        assert cal.is_working_time(s), ctx
        x = cal.add_business_time(s, d)
        assert x <= b and cal.business_time_between(x, b) == zero, ctx
        assert (x == b) is _ends_working(cal, b), ctx

        # between is a signed, additive measure bounded by elapsed time
        ab = cal.business_time_between(a, b)
        assert ab == -cal.business_time_between(b, a), ctx
        assert ab == cal.business_time_between(a, c) + cal.business_time_between(c, b), ctx
        lo_t, hi_t = min(a, b), max(a, b)
        assert zero <= abs(ab) <= hi_t - lo_t, ctx

        # add(between) lands on b when b is reachable, else on the previous interval end
        if lo_t < hi_t:
            span = abs(ab)
            y = cal.add_business_time(lo_t, span)
            assert y <= hi_t and cal.business_time_between(y, hi_t) == zero, ctx
            if span:
                assert (y == hi_t) is _ends_working(cal, hi_t), ctx
                z = cal.subtract_business_time(hi_t, span)
                assert z >= lo_t and cal.business_time_between(lo_t, z) == zero, ctx
                assert (z == lo_t) is cal.is_working_time(lo_t), ctx

        # next working moment and business days
        n = cal.next_working_moment(a)
        assert n >= a and cal.is_working_time(n) and cal.business_time_between(a, n) == zero, ctx
        k = rng.randrange(1, 12)
        bd = cal.add_business_days(a, k)
        assert cal.is_working_time(bd) or _ends_working(cal, bd), ctx
        counted, day = 0, cal.local_date(n)
        while counted < k:
            day += timedelta(days=1)
            counted += cal.is_working_day(day)
        assert cal.local_date(bd - TICK if not cal.is_working_time(bd) else bd) == day, ctx


def _oracle_minutes(cal: BusinessCalendar, a: datetime, b: datetime, step: int) -> int:
    """Working minutes in [a, b) by scanning local wall time (independent of the UTC span logic)."""
    total, t = 0, a
    hours: dict[date, tuple[WorkingInterval, ...]] = {}
    while t < b:
        wall = t.astimezone(cal.zone)
        offset = wall - wall.replace(hour=0, minute=0, second=0, microsecond=0)
        day = wall.date()
        if day not in hours:
            hours[day] = cal.working_hours_on(day)
        if any(iv.start_offset <= offset < iv.end_offset for iv in hours[day]):
            total += step
        t += timedelta(minutes=step)
    return total


def test_between_matches_brute_force_oracle() -> None:
    rng = random.Random(7)
    for cal in (SWEEP_CAL, DEFAULT):
        for _ in range(150):
            day = date(2025, 9, 1) + timedelta(days=rng.randrange(200))
            a = datetime.combine(day, time(), SH) + timedelta(minutes=15 * rng.randrange(96))
            b = a + timedelta(minutes=15 * rng.randrange(1, 4 * 96))
            minutes = _oracle_minutes(cal, a, b, 15)
            assert cal.business_time_between(a, b) == timedelta(minutes=minutes), (a, b)
            if minutes:
                end = cal.add_business_time(a, timedelta(minutes=minutes))
                assert _oracle_minutes(cal, a, end, 15) == minutes


def test_calendar_from_env_inline_file_and_default(tmp_path: Path) -> None:
    around_the_clock = {
        "working_hours": {d: ["00:00-24:00"] for d in WEEKDAY_NAMES},
        "use_cn_holidays": False,
    }
    inline = calendar_from_env({"SALESOPS_BUSINESS_CALENDAR": json.dumps(around_the_clock)})
    assert inline.is_working_time(datetime(2025, 10, 1, 3, tzinfo=SH))
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({"timezone": "Europe/Berlin"}))
    assert calendar_from_env({"SALESOPS_BUSINESS_CALENDAR": str(path)}).timezone == "Europe/Berlin"
    assert calendar_from_env({}) == BusinessCalendar()
    with pytest.raises(CalendarConfigError):
        calendar_from_env({"SALESOPS_BUSINESS_CALENDAR": str(tmp_path / "missing.json")})
