"""proto_dict.to_dict is json_format.MessageToDict(preserving_proto_field_name=True), dict for dict,
over random messages of every message type of the leads protos (every field kind they use, unset
and default values, unknown enum numbers, non-finite doubles, nested and repeated messages,
Timestamps in and out of range) and the stored bodies' types in particular."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from salesops.leads.v1 import (
    activity_pb2,
    events_pb2,
    insights_pb2,
    lead_pb2,
    leads_service_pb2,
    policies_pb2,
    routing_pb2,
)
from services.leads import proto_dict

FILES = (lead_pb2, routing_pb2, events_pb2, leads_service_pb2, policies_pb2, activity_pb2, insights_pb2)
STORED = (lead_pb2.Lead, lead_pb2.GradingResult, lead_pb2.IntakeRecord, routing_pb2.AssignmentDecision)


def _types() -> list[Descriptor]:
    out: list[Descriptor] = []

    def walk(d: Descriptor) -> None:
        if not d.GetOptions().map_entry:
            out.append(d)
        for n in d.nested_types:
            walk(n)

    for f in FILES:
        for d in f.DESCRIPTOR.message_types_by_name.values():
            walk(d)
    return out


def _scalar(rnd: random.Random, field: Any, tame: bool = False) -> Any:  # a FieldDescriptor
    """A random value of the field's type (`tame`: finite, a named enum value)."""
    t, cpp = field.type, field.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return (
            rnd.choice([*numbers, *numbers, 0, 97])
            if not (tame or field.enum_type.is_closed)
            else rnd.choice(numbers)
        )
    if t == FieldDescriptor.TYPE_BYTES:
        return rnd.randbytes(rnd.randint(0, 5))
    if cpp == FieldDescriptor.CPPTYPE_STRING:
        return rnd.choice(["", "a", "李雷 ☃", "x" * rnd.randint(1, 30), "0"])
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        return rnd.random() < 0.5
    if cpp in (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT):
        return rnd.choice(
            [
                0.0,
                -0.0,
                1.5,
                -2.25,
                1e-7,
                0.1,
                rnd.random(),
                *([] if tame else [math.inf, -math.inf, math.nan]),
            ]
        )
    if cpp == FieldDescriptor.CPPTYPE_INT32:
        return rnd.choice([0, 1, -1, 2**31 - 1, -(2**31), rnd.randint(-1000, 1000)])
    if cpp == FieldDescriptor.CPPTYPE_UINT32:
        return rnd.choice([0, 1, 2**32 - 1, rnd.randint(0, 1000)])
    if cpp == FieldDescriptor.CPPTYPE_INT64:
        return rnd.choice([0, 1, -1, 2**63 - 1, -(2**63), 2**53 + 1, rnd.randint(-(10**12), 10**12)])
    return rnd.choice([0, 1, 2**64 - 1, rnd.randint(0, 10**12)])


def _fill(rnd: random.Random, msg: Message, depth: int, tame: bool = False) -> None:
    name = msg.DESCRIPTOR.full_name
    if name == "google.protobuf.Timestamp":
        seconds = [0, 1_700_000_000, rnd.randint(0, 4_000_000_000), *([] if tame else [10**12])]
        msg.seconds = rnd.choice(seconds)  # type: ignore[attr-defined]
        msg.nanos = rnd.choice([0, 1_000_000, 123_456_789, 5])  # type: ignore[attr-defined]
        return
    if name == "google.protobuf.Duration" and (tame or rnd.random() < 0.7):
        msg.seconds = rnd.choice([0, 1, 3600, rnd.randint(0, 10**6)])  # type: ignore[attr-defined]
        msg.nanos = rnd.choice([0, 500_000_000, 1_000])  # type: ignore[attr-defined]
        return
    if name.startswith("google.protobuf.") and depth > 0 and rnd.random() < 0.5:
        return  # other well-known types: left empty or filled as any message
    field: Any
    for field in msg.DESCRIPTOR.fields:
        if rnd.random() < 0.4:
            continue
        is_msg = field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE
        if is_msg and depth >= 3:
            continue
        if is_msg and field.message_type.GetOptions().map_entry:
            target = getattr(msg, field.name)
            key_f, val_f = (
                field.message_type.fields_by_name["key"],
                field.message_type.fields_by_name["value"],
            )
            for _ in range(rnd.randint(0, 2)):
                key = _scalar(rnd, key_f)
                if val_f.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                    _fill(rnd, target[key], depth + 1, tame)
                else:
                    target[key] = _scalar(rnd, val_f, tame)
        elif field.is_repeated:
            target = getattr(msg, field.name)
            for _ in range(rnd.randint(0, 3)):
                if is_msg:
                    _fill(rnd, target.add(), depth + 1, tame)
                else:
                    target.append(_scalar(rnd, field, tame))
        elif is_msg:
            sub = getattr(msg, field.name)
            sub.SetInParent()
            _fill(rnd, sub, depth + 1, tame)
        else:
            setattr(msg, field.name, _scalar(rnd, field, tame))


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN, and of the same types (an int is not a str)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def _expected(msg: Message) -> Any:
    try:
        return json_format.MessageToDict(msg, preserving_proto_field_name=True)
    except Exception as exc:  # e.g. a Timestamp out of range: the same error either way
        return type(exc)


def _got(msg: Message) -> Any:
    try:
        return proto_dict.to_dict(msg)
    except Exception as exc:
        return type(exc)


@pytest.mark.parametrize("desc", _types(), ids=lambda d: d.full_name)
def test_random_messages_convert_as_json_format(desc: Descriptor) -> None:
    rnd = random.Random(desc.full_name)
    cls = GetMessageClass(desc)
    for _ in range(60):
        msg = cls()
        _fill(rnd, msg, 0)
        want, got = _expected(msg), _got(msg)
        assert _same(got, want), (msg, got, want)


@pytest.mark.parametrize("cls", STORED, ids=lambda c: c.DESCRIPTOR.name)
def test_stored_bodies_take_the_fast_path(cls: type[Message]) -> None:
    """The stored bodies' types (finite values, known enums) are converted here, not by json_format
    (the test above would pass if everything fell back to it)."""
    rnd = random.Random(cls.DESCRIPTOR.name)
    fast = 0
    for _ in range(40):
        msg = cls()
        _fill(rnd, msg, 0, tame=True)
        try:
            got = proto_dict._convert(msg)
        except proto_dict._Slow:
            continue
        fast += 1
        assert _same(got, json_format.MessageToDict(msg, preserving_proto_field_name=True))
    assert fast >= 5
    assert proto_dict._PLANS[cls.DESCRIPTOR.full_name] is not None
