"""Conversions shared by the pipeline modules: clock, timestamps, dates, proto enum names."""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.type import date_pb2  # type: ignore[import-untyped]

from kit.errors import InvalidArgument


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def aware(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def ts(value: dt.datetime | None) -> Timestamp:
    t = Timestamp()
    if value is not None:
        t.FromDatetime(aware(value))
    return t


# Dates and times a request may name: periods, windows and offsets around them stay inside the
# calendar (a week of 9999-12-31 or 90 days before 0001-01-01 overflowed: INTERNAL).
MIN_DATE, MAX_DATE = dt.date(1900, 1, 1), dt.date(2999, 12, 31)


def from_ts(t: Timestamp, field: str = "time") -> dt.datetime | None:
    if not t.seconds and not t.nanos:
        return None
    try:
        value = t.ToDatetime(tzinfo=dt.UTC)
    except (ValueError, OverflowError):
        value = None
    if value is None or not MIN_DATE <= value.date() <= MAX_DATE:
        raise InvalidArgument.field(field, f"a time between {MIN_DATE.year} and {MAX_DATE.year}")
    return value


def to_date(d: date_pb2.Date, field: str) -> dt.date:
    """A real calendar date (INVALID_ARGUMENT on `field` for an unset, impossible or far one)."""
    try:
        value = dt.date(d.year, d.month, d.day)
    except ValueError:
        raise InvalidArgument.field(field, "must be a real calendar date (year, month and day)") from None
    if not MIN_DATE <= value <= MAX_DATE:
        raise InvalidArgument.field(field, f"a date between {MIN_DATE.year} and {MAX_DATE.year}")
    return value


def optional_date(d: date_pb2.Date, field: str) -> dt.date | None:
    if not (d.year or d.month or d.day):
        return None
    return to_date(d, field)


def date_proto(value: dt.date) -> date_pb2.Date:
    return date_pb2.Date(year=value.year, month=value.month, day=value.day)


def enum_name(enum: Any, value: int) -> str:
    """Stored name of an enum value: FORECAST_CATEGORY_COMMIT -> COMMIT; UNSPECIFIED -> ""."""
    if not value:
        return ""
    found = enum.DESCRIPTOR.values_by_number.get(value)
    if found is None:
        return f"UNKNOWN_{value}"  # a value from a newer client: matches nothing stored
    prefix = enum.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
    return str(found.name).removeprefix(prefix)


def enum_value(enum: Any, name: str) -> Any:
    if not name:
        return 0
    prefix = enum.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
    return enum.Value(prefix + name)


MAX_LIST = 500  # values in one repeated filter field: each is a bound parameter (PostgreSQL allows 32767)


def bounded_lists(msg: Message, prefix: str = "", limit: int = MAX_LIST) -> None:
    """Refuse a request whose repeated fields (at any depth of its set sub-messages) hold over `limit` values."""
    for field, value in msg.ListFields():
        path = f"{prefix}.{field.name}" if prefix else field.name
        if field.is_repeated:
            if len(value) > limit:
                raise InvalidArgument.field(path, f"at most {limit} values")
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            bounded_lists(value, path, limit)


MAX_NOTE = 2000  # notes and next steps: they accumulate in the deal's body (stage history, checklist)


def bounded_text(value: str, field: str, limit: int = MAX_NOTE) -> str:
    if len(value) > limit:
        raise InvalidArgument.field(field, f"at most {limit} characters")
    return value
