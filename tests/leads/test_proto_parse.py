"""proto_dict.parse_into is json_format.ParseDict(ignore_unknown_fields=True), message for message:
random messages of every leads type through to_dict, then the dict bent (unknown keys, an extension-like
key, unknown enum names and numbers, JSON names, nulls, values of the wrong type, integers as strings
or floats or out of range, non-finite numbers, unpaired surrogates, bad times), parsed by both into an
empty message and into a filled one; the same message, or the same kind of error."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from salesops.common.v1 import types_pb2
from salesops.leads.v1 import enums_pb2, lead_pb2, leads_service_pb2
from services.leads import proto_dict
from tests.leads.test_proto_dict import STORED, _fill, _types

_ODD: list[Any] = [
    None,
    "",
    "x",
    "0",
    "12",
    " 7",
    "1e3",
    "1.0",
    "-5",
    "NaN",
    "Infinity",
    "NOT_A_NAME",
    "\ud800",
    "a\udc00b",
    "2020-01-01T00:00:00Z",
    "not a time",
    0,
    1,
    -1,
    97,
    2**31,
    2**64,
    10**400,
    1.5,
    2.0,
    -0.0,
    float("nan"),
    float("inf"),
    True,
    False,
    [],
    [None],
    ["x", 1],
    [{}],
    {},
    {"unknown": 1},
    {"[ext.x]": 1},
]


def _bend(rnd: random.Random, d: dict[str, Any], desc: Descriptor) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        field: Any = desc.fields_by_name.get(key)
        if field is not None and rnd.random() < 0.15:
            key = field.json_name  # camelCase, as another client might write it
        if rnd.random() < 0.12:
            value = copy.deepcopy(rnd.choice(_ODD))
        elif field is not None and field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            sub = field.message_type
            if isinstance(value, dict) and not sub.GetOptions().map_entry:
                value = _bend(rnd, value, sub)
            elif isinstance(value, list):
                value = [_bend(rnd, v, sub) if isinstance(v, dict) else v for v in value]
                if rnd.random() < 0.1:
                    value.append(copy.deepcopy(rnd.choice(_ODD)))
        elif field is not None and field.cpp_type == FieldDescriptor.CPPTYPE_ENUM and rnd.random() < 0.3:
            odd = rnd.choice(["NOT_A_NAME", 97, "97", 0, "1", 1.0])
            value = [odd, *value] if isinstance(value, list) else odd
        elif isinstance(value, list) and rnd.random() < 0.1:
            value = [*value, copy.deepcopy(rnd.choice(_ODD))]
        out[key] = value
    if rnd.random() < 0.3:
        out["zz_unknown"] = {"deep": [1, 2]}
    if rnd.random() < 0.05:
        out["[salesops.nope]"] = 1
    if rnd.random() < 0.05:
        out[rnd.choice(["", "_", "zzUnknown"])] = None
    return out


def _outcome(parse: Any, cls: type[Message], d: Any, base: Message | None) -> Any:
    msg = cls()
    if base is not None:
        msg.CopyFrom(base)
    try:
        parse(copy.deepcopy(d), msg)
    except Exception as exc:
        return type(exc)
    return msg.SerializeToString(deterministic=True)


def _json_format(d: Any, msg: Message) -> None:
    json_format.ParseDict(d, msg, ignore_unknown_fields=True)


def _dict(msg: Message) -> Any:
    try:
        return proto_dict.to_dict(msg)
    except Exception:  # e.g. a time out of range: nothing to parse
        return None


@pytest.mark.parametrize("desc", _types(), ids=lambda d: d.full_name)
def test_random_dicts_parse_as_json_format(desc: Descriptor) -> None:
    rnd = random.Random("parse " + desc.full_name)
    cls = GetMessageClass(desc)
    errors = 0
    for i in range(60):
        msg = cls()
        _fill(rnd, msg, 0)
        d = _dict(msg)
        if d is None:
            continue
        if i % 3:  # a third exactly as written, the rest bent
            d = _bend(rnd, d, desc)
        base = None
        if i % 4 == 0:  # merged into a filled message, as ParseDict merges
            base = cls()
            _fill(rnd, base, 0, tame=True)
        want = _outcome(_json_format, cls, d, base)
        got = _outcome(proto_dict.parse_into, cls, d, base)
        assert got == want, (d, got, want)
        errors += isinstance(want, type)
    assert errors < 60


@pytest.mark.parametrize(
    "d",
    [
        [],
        "contact",
        {"contact": []},
        {"contact": "ab"},
        {"contact": None},
        {"tags": "x"},
        {"tags": ("a", "b")},
        {"stated_budget": {"amount_minor": "12"}},
        {"stated_budget": {"amount_minor": 1.5}},
        {"stated_budget": {"amountMinor": "9223372036854775808"}},
        {1: "x"},
        {"[x.y]": 1},
        {"display_name": "a", "displayName": "b"},
        {"contact": {"name": "a"}, "region": 3},
    ],
)
def test_odd_lead_bodies(d: Any) -> None:
    want = _outcome(_json_format, lead_pb2.Lead, d, None)
    assert _outcome(proto_dict.parse_into, lead_pb2.Lead, d, None) == want


def test_too_deep_is_json_formats_error() -> None:
    """The nesting limit counts the same: a Struct (two levels a key) inside messages 1 to 4 deep."""
    kinds = set()
    for levels in range(46, 52):
        value: Any = 1
        for _ in range(levels):
            value = {"k": value}
        lead = {"attributes": value}
        intakes = {"recent_intakes": [{"attributes": value}]}
        for cls, d in (
            (lead_pb2.Lead, lead),
            (lead_pb2.Lead, intakes),
            (leads_service_pb2.GetLeadResponse, {"lead": lead}),
            (leads_service_pb2.ListLeadsResponse, {"leads": [intakes]}),
        ):
            want = _outcome(_json_format, cls, d, None)
            assert _outcome(proto_dict.parse_into, cls, d, None) == want, (cls, levels)
            kinds.add(want if isinstance(want, type) else bytes)
    assert kinds == {bytes, json_format.ParseError}


@pytest.mark.parametrize("cls", STORED, ids=lambda c: c.DESCRIPTOR.name)
def test_stored_bodies_are_parsed_here(cls: type[Message], monkeypatch: pytest.MonkeyPatch) -> None:
    """Bodies as written (finite values, known enums) are parsed without json_format, bar the fields
    of well-known types (the test above would pass if everything went to json_format)."""
    rnd = random.Random("stored " + cls.DESCRIPTOR.name)
    handed: list[Any] = []
    real = proto_dict._json_field

    def counted(key: Any, value: Any, msg: Message, depth: int) -> None:
        handed.append(key)
        real(key, value, msg, depth)

    monkeypatch.setattr(proto_dict, "_json_field", counted)
    for _ in range(40):
        msg = cls()
        _fill(rnd, msg, 0, tame=True)
        d = _dict(msg)
        if d is None:
            continue
        before = len(handed)
        got = proto_dict.parse_into(copy.deepcopy(d), cls())
        assert got == json_format.ParseDict(d, cls(), ignore_unknown_fields=True)
        assert all(proto_dict._parse_kind(f) == proto_dict._P_JSON for f in _fields(cls, handed[before:]))
    lead = lead_pb2.Lead(
        display_name="acme",
        contact=lead_pb2.LeadContact(name="李明", phone="+8613900000000", email="a@example.com"),
        company=lead_pb2.LeadCompany(name="acme", employee_count=300, city="上海"),
        source=lead_pb2.LeadSource(channel=enums_pb2.LEAD_CHANNEL_WEB_FORM, campaign_id="c"),
        product_lines=["crm"],
        stated_budget=types_pb2.Money(currency="CNY", amount_minor=10**13),
        tags=["vip", "q3"],
    )
    handed.clear()
    assert proto_dict.parse_into(proto_dict.to_dict(lead), lead_pb2.Lead()) == lead
    assert handed == []


def _fields(cls: type[Message], keys: list[Any]) -> list[Any]:
    """The fields of `keys` found anywhere in cls's types (a handed-over key may be a nested one)."""
    found = []
    for desc in _types():
        for key in keys:
            if key in desc.fields_by_name:
                found.append(desc.fields_by_name[key])
    return found
