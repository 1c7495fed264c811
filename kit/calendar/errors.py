"""The business calendar's errors."""

from __future__ import annotations

from datetime import date


class CalendarError(Exception):
    """Base of the business calendar's errors."""


class CalendarConfigError(CalendarError, ValueError):
    """The calendar configuration is invalid (bad zone, overlapping intervals, ...)."""


class CalendarRangeError(CalendarError):
    """No reliable calendar data for a date (strict mode, a year without the State Council's schedule)."""

    def __init__(self, day: date, message: str) -> None:
        super().__init__(message)
        self.day = day
