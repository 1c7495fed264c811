"""json_format.MessageToDict(msg, preserving_proto_field_name=True), the same dict, built faster.

The leads service stores its bodies (a lead, its grading, an intake record, an assignment decision)
as that dict; json_format's printer walks every field through several generic calls and was an
eighth of a grouped CreateLead's CPU (three or four bodies a lead). Here each message type's fields
are looked at once (name, kind, enum names) and a message is converted from its ListFields() with
one step per set field.

Only what is plainly the same is done here: strings, bools, 32-bit integers, 64-bit integers (as
strings), enums by name, finite doubles, nested messages, repeated fields of these, Timestamps and
Durations (their ToJsonString, as json_format does); other well-known types (a Struct) are
json_format's. Anything else (bytes, floats, maps, extensions, an enum number without a name, a value json_format writes
specially) sends that message to json_format itself. tests/leads/test_proto_dict.py compares both
over random messages of every type of the leads protos.

`parse_into` is the other way, json_format.ParseDict(d, msg, ignore_unknown_fields=True), on the
same terms (tests/leads/test_proto_parse.py).
"""

from __future__ import annotations

import math
import re
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

# A field's kind (repeated kinds are these plus _REPEATED).
_PLAIN, _INT64, _ENUM, _DOUBLE, _MESSAGE, _TIME, _WELL_KNOWN = range(7)
_REPEATED = 8
# How a field is known to be set: HasField (it has presence), else its value is not empty / zero /
# false, or (a double) is -0.0.
_HAS, _TRUTHY, _SIGNED = range(3)
_Step = tuple[str, int, dict[int, str], int]  # the field's name, kind, its enum's names, presence
# Per message type: its fields' steps in number order, or None when json_format converts it whole.
_PLANS: dict[str, list[_Step] | None] = {}

_INT64_TYPES = (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64)
_PLAIN_TYPES = (
    FieldDescriptor.CPPTYPE_INT32,
    FieldDescriptor.CPPTYPE_UINT32,
    FieldDescriptor.CPPTYPE_BOOL,
)
_TIMES = ("google.protobuf.Timestamp", "google.protobuf.Duration")


class _Slow(Exception):
    """A value this module leaves to json_format (its message is converted there)."""


def to_dict(msg: Message) -> dict[str, Any]:
    """MessageToDict(msg, preserving_proto_field_name=True)."""
    try:
        return _convert(msg)
    except _Slow:
        return json_format.MessageToDict(msg, preserving_proto_field_name=True)  # type: ignore[no-any-return]


def _convert(msg: Message) -> dict[str, Any]:
    desc = msg.DESCRIPTOR
    try:
        plan = _PLANS[desc.full_name]
    except KeyError:
        plan = _PLANS[desc.full_name] = _plan(desc)
    if plan is None:
        raise _Slow
    out: dict[str, Any] = {}
    # Each field looked at by name in number order (ListFields' order) instead of through
    # ListFields, which builds a descriptor and tuple per field and was most of a lead's conversion.
    for name, kind, names, presence in plan:
        if presence == _HAS:
            if not msg.HasField(name):
                continue
            value = getattr(msg, name)
        else:
            value = getattr(msg, name)
            if not value and not (presence == _SIGNED and math.copysign(1.0, value) < 0):
                continue  # unset: empty, zero, false (a -0.0 is set, as for ListFields)
        if kind == _PLAIN:
            out[name] = value
        elif kind == _MESSAGE:
            out[name] = _nested(value)
        elif kind == _ENUM:
            out[name] = _enum(names, value)
        elif kind == _TIME:
            out[name] = _time(value)
        elif kind == _INT64:
            out[name] = str(value)
        elif kind == _DOUBLE:
            out[name] = _double(value)
        elif kind == _WELL_KNOWN:
            out[name] = _json_format(value)
        elif kind == _PLAIN | _REPEATED:
            out[name] = list(value)
        elif kind == _MESSAGE | _REPEATED:
            out[name] = [_nested(v) for v in value]
        elif kind == _ENUM | _REPEATED:
            out[name] = [_enum(names, v) for v in value]
        elif kind == _TIME | _REPEATED:
            out[name] = [_time(v) for v in value]
        elif kind == _INT64 | _REPEATED:
            out[name] = [str(v) for v in value]
        elif kind == _WELL_KNOWN | _REPEATED:
            out[name] = [_json_format(v) for v in value]
        else:  # repeated double
            out[name] = [_double(v) for v in value]
    return out


def _nested(msg: Message) -> dict[str, Any]:
    try:
        return _convert(msg)
    except _Slow:
        return json_format.MessageToDict(msg, preserving_proto_field_name=True)  # type: ignore[no-any-return]


def _json_format(msg: Message) -> Any:
    """What json_format's printer makes of a message field's value (a well-known type's own form)."""
    try:
        return json_format.MessageToDict(msg, preserving_proto_field_name=True)
    except ValueError:  # e.g. a Struct holding NaN: the message around it raises json_format's error
        raise _Slow from None


def _enum(names: dict[int, str], value: int) -> str:
    name = names.get(value)
    if name is None:  # an unknown number: json_format's rule (the number, or an error)
        raise _Slow
    return name


def _time(value: Any) -> str:
    try:
        return value.ToJsonString()  # type: ignore[no-any-return]
    except ValueError:  # out of range: json_format's error
        raise _Slow from None


def _double(value: float) -> float:
    if not math.isfinite(value):  # "NaN", "Infinity"...: json_format's spelling
        raise _Slow
    return value


def _plan(desc: Any) -> list[_Step] | None:  # a Descriptor (its stubs: a union of kinds)
    """The steps of a message type's fields, or None if json_format must convert it."""
    if desc.file.name.startswith("google/protobuf/"):  # well-known types: their own JSON forms
        return None
    if desc.extension_ranges:  # extensions are not among its fields: json_format's
        return None
    plan: list[_Step] = []
    for field in sorted(desc.fields, key=lambda f: f.number):
        kind = _kind(field)
        if kind is None:
            return None
        names: dict[int, str] = {}
        if kind == _ENUM:
            for v in field.enum_type.values:
                if v.GetOptions().ListFields():  # e.g. a JSON name of its own: json_format's
                    return None
                names[v.number] = v.name
        if field.is_repeated:
            presence = _TRUTHY
            kind |= _REPEATED
        elif field.has_presence:
            presence = _HAS
        else:
            presence = _SIGNED if kind == _DOUBLE else _TRUTHY
        plan.append((field.name, kind, names, presence))
    return plan


def _kind(field: Any) -> int | None:  # a FieldDescriptor
    cpp = field.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_MESSAGE:
        sub = field.message_type
        if sub.GetOptions().map_entry:
            return None
        if sub.full_name in _TIMES:
            return _TIME
        if sub.file.name.startswith("google/protobuf/"):
            return _WELL_KNOWN
        return _MESSAGE
    if cpp == FieldDescriptor.CPPTYPE_ENUM:
        return None if field.enum_type.full_name == "google.protobuf.NullValue" else _ENUM
    if cpp == FieldDescriptor.CPPTYPE_STRING:
        return None if field.type == FieldDescriptor.TYPE_BYTES else _PLAIN
    if cpp in _PLAIN_TYPES:
        return _PLAIN
    if cpp in _INT64_TYPES:
        return _INT64
    if cpp == FieldDescriptor.CPPTYPE_DOUBLE:
        return _DOUBLE
    return None  # float: json_format's shortest form


# Reading: json_format.ParseDict(d, msg, ignore_unknown_fields=True), field by field. Its parser
# builds a JSON-name dict of every field of each message it enters and formats a path per field
# (it was the largest per-lead cost of a ListLeads page). Here a message type's keys are looked at
# once; a value this does not plainly handle (null, a map, bytes, a Struct or other well-known type,
# an unknown enum name, a number given oddly, anything that fails) is handed to json_format for that
# one field, so its result or error (ParseError, or whatever it raises) is json_format's own.
_P_STR, _P_BOOL, _P_INT, _P_ENUM, _P_DOUBLE, _P_MESSAGE, _P_TIME, _P_JSON = range(8)
_P_REPEATED = 8
_MAX_DEPTH = 100  # json_format's default max_recursion_depth (the top message is depth 1)
_PStep = tuple[str, int, dict[str, int], str | None]  # field name, kind, enum numbers by name, oneof
# Per message type: its steps by JSON key (proto and JSON names) and whether it has oneofs, or None
# when json_format parses it whole (well-known types, extendable messages).
_PARSE_PLANS: dict[str, tuple[dict[str, _PStep], bool] | None] = {}
_INT_TYPES = (*_INT64_TYPES, FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_UINT32)
# json_format's check of a string's unpaired surrogates (it raises ParseError for them).
_UNPAIRED_SURROGATE = re.compile("[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]")


class _Field(Exception):
    """A field's value this module leaves to json_format."""


def parse_into(d: Any, msg: Message) -> Message:
    """json_format.ParseDict(d, msg, ignore_unknown_fields=True) (merged into `msg`, as it does)."""
    plan = _parse_plan(msg.DESCRIPTOR)
    if plan is None or type(d) is not dict:
        return json_format.ParseDict(d, msg, ignore_unknown_fields=True)  # type: ignore[no-any-return]
    _parse(d, msg, plan, 1)
    return msg


def _parse(d: dict[Any, Any], msg: Message, plan: tuple[dict[str, _PStep], bool], depth: int) -> None:
    steps, has_oneofs = plan
    # json_format's check of its keys (and oneofs) seen: with no oneof it cannot fail (a dict's keys
    # are distinct), so it is kept only for types with one.
    seen: list[Any] | None = [] if has_oneofs else None
    for key, value in d.items():
        step = steps.get(key)
        if step is None:  # unknown: skipped, unless json_format would look for an extension
            if type(key) is not str or key[:1] == "[":
                _json_field(key, value, msg, depth)
            continue
        name, kind, enums, oneof = step
        if seen is not None:
            if key in seen:
                raise json_format.ParseError(f'Message type "{msg.DESCRIPTOR.full_name}" has "{key}" twice.')
            seen.append(key)
            if oneof is not None and value is not None:
                if oneof in seen:
                    raise json_format.ParseError(
                        f'Message type "{msg.DESCRIPTOR.full_name}" has more than one "{oneof}" field.'
                    )
                seen.append(oneof)
        if kind == _P_JSON or value is None:
            _json_field(key, value, msg, depth)
            continue
        try:  # a string and a nested message (most of a body's fields) first, without calls
            if (
                kind == _P_STR
                and type(value) is str
                and (value.isascii() or not _UNPAIRED_SURROGATE.search(value))
            ):
                setattr(msg, name, value)
            elif kind == _P_MESSAGE and type(value) is dict and depth < _MAX_DEPTH:
                sub = getattr(msg, name)
                sub.SetInParent()
                _parse_message(value, sub, depth + 1)
            else:
                _set(msg, name, kind, enums, value, depth)
        except Exception:  # json_format's own result or error (a repeated field is cleared first)
            _json_field(key, value, msg, depth)


def _json_field(key: Any, value: Any, msg: Message, depth: int) -> None:
    """json_format's parse of one field, as deep as it would be in the whole message's parse."""
    json_format.ParseDict(
        {key: value}, msg, ignore_unknown_fields=True, max_recursion_depth=_MAX_DEPTH + 1 - depth
    )


def _set(msg: Message, name: str, kind: int, enums: dict[str, int], value: Any, depth: int) -> None:
    if kind & ~_P_REPEATED in (_P_MESSAGE, _P_TIME) and depth >= _MAX_DEPTH:  # a message too deep
        raise _Field
    if kind & _P_REPEATED:
        if type(value) is not list:
            raise _Field
        kind ^= _P_REPEATED
        msg.ClearField(name)  # json_format's too: the list replaces the field's values
        target: Any = getattr(msg, name)
        if kind == _P_MESSAGE:
            for item in value:
                if type(item) is not dict:
                    raise _Field
                _parse_message(item, target.add(), depth + 1)
        elif kind == _P_TIME:
            for item in value:
                if type(item) is not str:
                    raise _Field
                target.add().FromJsonString(item)
        else:
            target.extend([_scalar(kind, enums, v) for v in value])
    elif kind == _P_MESSAGE:
        if type(value) is not dict:
            raise _Field
        sub = getattr(msg, name)
        sub.SetInParent()
        _parse_message(value, sub, depth + 1)
    elif kind == _P_TIME:
        if type(value) is not str:
            raise _Field
        sub = getattr(msg, name)
        sub.SetInParent()
        sub.FromJsonString(value)
    else:
        setattr(msg, name, _scalar(kind, enums, value))


def _parse_message(d: dict[Any, Any], msg: Message, depth: int) -> None:
    plan = _parse_plan(msg.DESCRIPTOR)
    if plan is None:
        raise _Field
    _parse(d, msg, plan, depth)


def _scalar(kind: int, enums: dict[str, int], v: Any) -> Any:
    """A scalar value as json_format converts it, when it is plainly that (else _Field; a value
    setattr refuses, e.g. an integer out of range, raises there and goes to json_format too)."""
    t = type(v)
    if kind == _P_STR:
        if t is str and (v.isascii() or not _UNPAIRED_SURROGATE.search(v)):
            return v
    elif kind == _P_ENUM:
        if t is str:
            number = enums.get(v)
            if number is not None:
                return number
    elif kind == _P_INT:
        if t is int:
            return v
        if t is str and " " not in v:
            return int(v)  # json_format's first try (a ValueError: its float route, there)
    elif kind == _P_BOOL:
        if v is True or v is False:
            return v
    elif kind == _P_DOUBLE:
        if t is float and math.isfinite(v):
            return v
        if t is int:
            return float(v)  # an OverflowError: json_format's, there
    raise _Field


def _parse_plan(desc: Any) -> tuple[dict[str, _PStep], bool] | None:  # a Descriptor
    try:
        return _PARSE_PLANS[desc.full_name]
    except KeyError:
        pass
    plan: tuple[dict[str, _PStep], bool] | None = None
    if not desc.file.name.startswith("google/protobuf/") and not desc.extension_ranges:
        steps: dict[str, _PStep] = {}
        for field in desc.fields:
            kind = _parse_kind(field)
            enums = (
                {v.name: v.number for v in field.enum_type.values} if kind & ~_P_REPEATED == _P_ENUM else {}
            )
            oneof = field.containing_oneof.name if field.containing_oneof is not None else None
            steps[field.name] = (field.name, kind, enums, oneof)
        for field in desc.fields:  # json_format looks a key up by JSON name first
            steps[field.json_name] = steps[field.name]
        plan = (steps, bool(desc.oneofs))
    _PARSE_PLANS[desc.full_name] = plan
    return plan


def _parse_kind(field: Any) -> int:  # a FieldDescriptor
    cpp = field.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_MESSAGE:
        sub = field.message_type
        if sub.full_name in _TIMES:
            kind = _P_TIME
        elif sub.GetOptions().map_entry or sub.file.name.startswith("google/protobuf/"):
            return _P_JSON
        else:
            kind = _P_MESSAGE
    elif cpp == FieldDescriptor.CPPTYPE_ENUM:
        if field.enum_type.full_name == "google.protobuf.NullValue":
            return _P_JSON
        kind = _P_ENUM
    elif cpp == FieldDescriptor.CPPTYPE_STRING:
        if field.type == FieldDescriptor.TYPE_BYTES:
            return _P_JSON
        kind = _P_STR
    elif cpp == FieldDescriptor.CPPTYPE_BOOL:
        kind = _P_BOOL
    elif cpp in _INT_TYPES:
        kind = _P_INT
    elif cpp == FieldDescriptor.CPPTYPE_DOUBLE:
        kind = _P_DOUBLE
    else:  # float: json_format's range checks
        return _P_JSON
    return kind | _P_REPEATED if field.is_repeated else kind
