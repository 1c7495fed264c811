"""Response message -> JSON object, by a converter compiled once per message type.

`to_dict(msg)` returns exactly what `json_format.MessageToDict(msg)` returns (field json names,
enum value names, 64-bit integers as strings, defaults omitted, the well-known types' own forms;
keys in the same order), without its generic walk: per field the walk re-derives what the
descriptor already says (map? repeated? which type? which enum name?) through several calls,
which was the gateway's largest cost per answered lead. Here that is decided once per message type
and each field costs one table lookup. Anything the table does not cover (extensions, `float`
fields, custom JSON enum names) is left to `json_format`, so the output never differs; the
equivalence is checked on many messages in tests/gateway/test_proto_json.py.

`to_jsonable(msg)` is the same for `json_encode.dumps`, with one shortcut: a message of a
resource-sized type (a lead, a deal: `MEMO_MIN_FIELDS` fields or more) is looked up by its
serialized bytes in its type's memo (kit.memo), which keeps the JSON text of each one converted
before (an `orjson.Fragment`, written as it is) within `MEMO`, the bytes all types share. The
same bytes are the same message, so an entry never goes stale; a lead read again costs one
SerializeToString (~1 us) instead of its conversion (~20 us).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from datetime import date, timedelta
from functools import lru_cache
from operator import attrgetter, methodcaller
from typing import Any

from google.protobuf import descriptor, descriptor_pool, json_format
from google.protobuf.message import Message

from gateway import json_encode
from gateway.json_encode import ExactFloat, Fragment
from kit.memo import ByteBudget, BytesMemo

FD = descriptor.FieldDescriptor
Convert = Callable[[Any], Any]
# Field -> (JSON name, converter of its value, or None when the value is its own JSON).
Entry = tuple[str, Convert | None]

_INT64 = frozenset({FD.CPPTYPE_INT64, FD.CPPTYPE_UINT64})
# Their JSON form is their own string method, as json_format calls it.
_STRING_FORM = frozenset({"google.protobuf.Duration", "google.protobuf.FieldMask"})
_TIMESTAMP = "google.protobuf.Timestamp"
# Timestamp.ToJsonString's valid range (0001-01-01 to 9999-12-31); outside it, its own error.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799
_EPOCH = date(1970, 1, 1)
_WRAPPERS_FILE = "google/protobuf/wrappers.proto"
# Left to json_format: Any (holds any type) and FloatValue (json_format's float printing).
_SPECIAL = frozenset({"google.protobuf.Any", "google.protobuf.FloatValue"})
# "HH:MM" of each minute of a day and ":SS" of each second: a timestamp is three lookups.
_HOUR_MINUTE = [f"{m // 60:02d}:{m % 60:02d}" for m in range(1440)]
_SECOND = [f":{s:02d}" for s in range(60)]


def _exact(value: Any) -> Any:
    if type(value) is float:
        return ExactFloat(value)
    if type(value) is dict:
        return {k: _exact(v) for k, v in value.items()}
    if type(value) is list:
        return [_exact(v) for v in value]
    return value


def _generic(msg: Message) -> Any:
    """json_format's answer, its floats as ExactFloat (so every encoder prints them alike)."""
    return _exact(json_format.MessageToDict(msg))


class _Generic(Exception):
    """A message type this module leaves to json_format."""


def _json_enum_extension() -> Any | None:
    try:
        return descriptor_pool.Default().FindExtensionByName("pb.enumvalue.json")
    except KeyError:
        return None


def _double(value: float) -> Any:
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    if math.isnan(value):
        return "NaN"
    return ExactFloat(value)  # equal to the float; printed exactly as json.dumps prints it


@lru_cache(maxsize=4096)
def _day(days: int) -> str:
    return (_EPOCH + timedelta(days=days)).isoformat() + "T"


def _timestamp(ts: Any) -> str:
    """`Timestamp.ToJsonString()` (RFC 3339, UTC, 0/3/6/9 fraction digits) without its datetime
    arithmetic: the audit times of every listed lead made it the largest part of a page."""
    seconds, nanos = ts.seconds, ts.nanos
    if not (_MIN_SECONDS <= seconds <= _MAX_SECONDS and 0 <= nanos < 1_000_000_000):
        return str(ts.ToJsonString())  # raises its own ValueError
    days, rest = divmod(seconds, 86_400)
    minutes, second = divmod(rest, 60)
    text: str = _day(days) + _HOUR_MINUTE[minutes] + _SECOND[second]
    if nanos == 0:
        return text + "Z"
    if nanos % 1_000_000 == 0:
        return f"{text}.{nanos // 1_000_000:03d}Z"
    if nanos % 1000 == 0:
        return f"{text}.{nanos // 1000:06d}Z"
    return f"{text}.{nanos:09d}Z"


def _bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("utf-8")


class _OpenNames(dict[int, Any]):
    """An open enum's names; a number from a newer server is printed as the number."""

    def __missing__(self, key: int) -> Any:
        return key


def _enum(enum: Any) -> Convert:
    if enum.full_name == "google.protobuf.NullValue":
        return lambda _value: None
    extension = _json_enum_extension()
    if extension is not None and any(v.GetOptions().HasExtension(extension) for v in enum.values):
        raise _Generic(enum.full_name)  # custom JSON names: json_format's own lookup
    pairs = {v.number: v.name for v in enum.values}
    # A closed enum holds no unknown number (the parser keeps it apart); json_format refuses one.
    names = pairs if enum.is_closed else _OpenNames(pairs)
    return names.__getitem__  # one C call per value, no Python frame


def _value(value: Any) -> Any:
    """google.protobuf.Value as json_format writes it (its doubles as ExactFloat)."""
    which = value.WhichOneof("kind")
    if which == "string_value":
        return value.string_value
    if which == "number_value":
        number = value.number_value
        if math.isinf(number) or math.isnan(number):
            raise ValueError("not a JSON number")  # json_format then raises its own error
        return ExactFloat(number)
    if which == "bool_value":
        return value.bool_value
    if which == "struct_value":
        return _struct(value.struct_value)
    if which == "list_value":
        return [_value(v) for v in value.list_value.values]
    return None  # null_value, or nothing set


def _struct(struct: Any) -> Any:
    fields = struct.fields
    return {key: _value(fields[key]) for key in fields}


def _list_value(values: Any) -> Any:
    return [_value(v) for v in values.values]


def _wrapper(desc: Any) -> Convert:
    """A wrapper's JSON is its value's, written even when it is the default."""
    convert = _value_converter(desc.fields_by_name["value"])
    if convert is None:
        return attrgetter("value")
    return lambda msg: convert(msg.value)


class _Compiled:
    """The converter of one message type; `fields` is filled after it is cached (recursive types)."""

    __slots__ = ("fields", "generic")

    def __init__(self) -> None:
        self.fields: dict[Any, Entry] = {}  # by descriptor: upb hands out one object per field
        self.generic = False

    def __call__(self, msg: Message) -> Any:
        if self.generic:
            return _generic(msg)
        entry = self.fields.__getitem__  # an extension is not there: KeyError, json_format's walk
        try:
            # One comprehension (no per-field stores or branches); the set fields come in
            # field-number order, as json_format writes them.
            return {
                e[0]: value if e[1] is None else e[1](value)
                for field, value in msg.ListFields()
                for e in (entry(field),)
            }
        except (ValueError, KeyError, TypeError, json_format.Error):
            return _generic(msg)  # its own error (or answer), word for word


def _map_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


_CACHE: dict[str, Convert] = {}
_OWN_FORM: dict[str, Convert] = {
    "google.protobuf.Struct": _struct,
    "google.protobuf.Value": _value,
    "google.protobuf.ListValue": _list_value,
}


# Types with at least this many fields are memoized: below it the lookup costs about as much as
# the conversion (a Money, a Timestamp), and only resources are read again and again.
MEMO_MIN_FIELDS = 16
# Per entry beyond its bytes: the key and value objects and the dict slot.
_ENTRY_OVERHEAD = 200

# The JSON text of messages converted before, one memo per resource type, up to the budget in all
# (create_app sizes it: SALESOPS_GATEWAY_JSON_MEMO_BYTES; 0 = off). Shared by every caller: an
# entry is only found by bytes the caller holds.
MEMO = ByteBudget()


class _Memoized:
    """A resource type's converter with its memo in front of it (the JSON text, as a Fragment)."""

    __slots__ = ("convert", "found", "memo")

    def __init__(self, convert: Convert) -> None:
        self.convert = convert
        self.memo: BytesMemo[bytes, Any] = BytesMemo(MEMO)
        self.found = self.memo.entries  # the dict: `found.get` is the fastest lookup there is

    def __call__(self, msg: Message) -> Any:
        key = msg.SerializePartialToString()
        hit = self.found.get(key)
        if hit is not None:
            return hit
        value = self.convert(msg)
        if not MEMO.budget:
            return value
        # orjson's refusal (a TypeError) reaches the caller's fallback: never a wrong entry.
        text = json_encode.dumps_fragments(value)
        fragment = Fragment(text)
        self.memo.put(key, fragment, len(key) + len(text) + _ENTRY_OVERHEAD)
        return fragment


def converter(desc: Any, memo: bool = False) -> Convert:
    """The compiled converter of a message type (built on first use, then reused). `memo`: what
    `to_jsonable` uses (resource-sized messages as Fragments of their JSON, by `MEMO`)."""
    if memo and Fragment is not None:
        return _memo_converter(desc)
    found = _CACHE.get(desc.full_name)
    if found is not None:
        return found
    if desc.full_name == _TIMESTAMP:
        _CACHE[_TIMESTAMP] = _timestamp
        return _timestamp
    if desc.full_name in _STRING_FORM:
        made: Convert = methodcaller("ToJsonString")
        _CACHE[desc.full_name] = made
        return made
    if desc.full_name in _OWN_FORM:
        _CACHE[desc.full_name] = _OWN_FORM[desc.full_name]
        return _OWN_FORM[desc.full_name]
    if desc.full_name in _SPECIAL:
        _CACHE[desc.full_name] = _generic
        return _generic
    if desc.file.name == _WRAPPERS_FILE:
        _CACHE[desc.full_name] = made = _wrapper(desc)
        return made
    compiled = _Compiled()
    _CACHE[desc.full_name] = compiled
    _compile(compiled, desc, memo=False)
    return compiled


def _compile(compiled: _Compiled, desc: Any, memo: bool) -> None:
    try:
        compiled.fields = {f: _entry(f, memo) for f in desc.fields}
    except _Generic:
        compiled.generic = True


_MEMO_CACHE: dict[str, Convert] = {}


def _memo_converter(desc: Any) -> Convert:
    found = _MEMO_CACHE.get(desc.full_name)
    if found is not None:
        return found
    plain = converter(desc)
    if not isinstance(plain, _Compiled) or plain.generic:  # well-known or json_format's: as is
        _MEMO_CACHE[desc.full_name] = plain
        return plain
    compiled = _Compiled()
    made: Convert = compiled
    if len(desc.fields) >= MEMO_MIN_FIELDS:
        made = _Memoized(compiled.__call__)
    _MEMO_CACHE[desc.full_name] = made
    _compile(compiled, desc, memo=True)
    return made


def _entry(field: Any, memo: bool = False) -> Entry:
    message = field.message_type
    if message is not None and message.GetOptions().map_entry:
        value = _value_converter(message.fields_by_name["value"], memo)
        if value is None:
            return field.json_name, lambda m: {_map_key(k): m[k] for k in m}
        return field.json_name, lambda m: {_map_key(k): value(m[k]) for k in m}
    convert = _value_converter(field, memo)
    if not field.is_repeated:
        return field.json_name, convert
    if convert is None:
        return field.json_name, list
    return field.json_name, lambda items: [convert(v) for v in items]


def _value_converter(field: Any, memo: bool = False) -> Convert | None:
    cpp = field.cpp_type
    if cpp == FD.CPPTYPE_MESSAGE:
        found = converter(field.message_type, memo)
        # A bound method is called without looking up the instance's __call__ each time.
        return found.__call__ if isinstance(found, _Compiled) else found
    if cpp == FD.CPPTYPE_ENUM:
        return _enum(field.enum_type)
    if cpp == FD.CPPTYPE_STRING:
        return _bytes if field.type == FD.TYPE_BYTES else None
    if cpp in _INT64:
        return str
    if cpp == FD.CPPTYPE_DOUBLE:
        return _double
    if cpp == FD.CPPTYPE_FLOAT:
        raise _Generic(field.full_name)  # json_format's shortest-float printing
    return None  # bool, 32-bit integers: their own JSON


def to_dict(msg: Message) -> Any:
    """`json_format.MessageToDict(msg)`, compiled per message type (doubles as ExactFloat)."""
    try:
        return converter(msg.DESCRIPTOR)(msg)
    except (ValueError, KeyError, TypeError):  # a well-known type at the top: json_format's error
        return _generic(msg)


def to_jsonable(msg: Message) -> Any:
    """`to_dict(msg)` for `json_encode.dumps`: the same JSON once encoded, resource-sized messages
    (the top one too) as Fragments of their JSON text, kept in `MEMO` while its budget allows."""
    try:
        return converter(msg.DESCRIPTOR, memo=bool(MEMO.budget))(msg)
    except (ValueError, KeyError, TypeError):
        return _generic(msg)


__all__ = ["MEMO", "MEMO_MIN_FIELDS", "converter", "to_dict", "to_jsonable"]
