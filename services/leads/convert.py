"""Conversions shared by the leads modules: clock and timestamps, proto enum names, proto <-> JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from kit.errors import InvalidArgument
from services.leads import proto_dict


def now() -> datetime:
    return datetime.now(UTC)


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if dt is None:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def ts(dt: datetime | None) -> Timestamp:
    """Timestamp of `dt`; the empty (unset) Timestamp for None."""
    t = Timestamp()
    if dt is not None:
        put_time(t, dt)
    return t


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def put_time(t: Timestamp, dt: datetime) -> None:
    """`t` set to `dt` (naive: UTC), in place: what `Timestamp.FromDatetime` does, by arithmetic
    (its calendar conversions were a visible share of presenting a list of leads)."""
    delta = (dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)) - _EPOCH
    t.seconds = delta.days * 86_400 + delta.seconds
    t.nanos = delta.microseconds * 1000


# Times a request may name: past year 9999 a Timestamp does not convert at all (was INTERNAL).
MIN_YEAR, MAX_YEAR = 1900, 2999


def from_ts(t: Timestamp, field: str = "time") -> datetime | None:
    if not t.seconds and not t.nanos:
        return None
    try:
        value = t.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        value = None
    if value is None or not MIN_YEAR <= value.year <= MAX_YEAR:
        raise InvalidArgument.field(field, f"a time between {MIN_YEAR} and {MAX_YEAR}")
    return value


def enum_name(enum: Any, value: int) -> str:
    """The stored name of a proto enum value: LEAD_CHANNEL_WEB_FORM -> WEB_FORM; UNSPECIFIED -> ""."""
    if not value:
        return ""
    found = enum.DESCRIPTOR.values_by_number.get(value)
    if found is None:
        return f"UNKNOWN_{value}"  # a value from a newer client: matches nothing stored
    name: str = found.name
    prefix = enum.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
    return name.removeprefix(prefix)


def enum_value(enum: Any, name: str) -> Any:
    """The proto enum value of a stored name: WEB_FORM -> LEAD_CHANNEL_WEB_FORM (typed Any: each enum is its own type)."""
    if not name:
        return 0
    found = _ENUM_VALUES.get((enum, name))
    if found is None:  # remembered: a lead's answer looks up a dozen of them
        prefix = enum.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
        found = enum.Value(prefix + name)  # an unknown name raises here, and is never remembered
        if len(_ENUM_VALUES) < 10_000:
            _ENUM_VALUES[(enum, name)] = found
    return found


_ENUM_VALUES: dict[tuple[Any, str], Any] = {}


def to_dict(msg: Message) -> dict[str, Any]:
    """json_format.MessageToDict(msg, preserving_proto_field_name=True), built faster (proto_dict)."""
    return proto_dict.to_dict(msg)


def parse(data: dict[str, Any], msg: Message) -> Message:
    return json_format.ParseDict(data, msg, ignore_unknown_fields=True)
