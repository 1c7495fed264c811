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
"""

from __future__ import annotations

import math
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
