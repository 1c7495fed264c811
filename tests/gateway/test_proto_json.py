"""gateway.proto_json answers exactly what json_format.MessageToDict answers, byte for byte once
encoded, on every response message the routes can return: filled at random (each field set or
left at its default, extremes of every scalar type, unknown enum numbers, maps, well-known types)
and as the services fill them (a lead with its contact, grading and first response)."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest
from google.protobuf import descriptor, json_format, struct_pb2
from google.protobuf.message import Message

from gateway import proto_json, transcode
from gateway.routes import load_routes
from salesops.leads.v1 import lead_pb2
from salesops.leads.v1 import leads_service_pb2 as pb

FD = descriptor.FieldDescriptor
ROUTES = load_routes()
RESPONSES = sorted({r.response_cls for r in ROUTES}, key=lambda c: c.DESCRIPTOR.full_name)

_INT_RANGES = {
    FD.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FD.CPPTYPE_UINT32: (0, 2**32 - 1),
    FD.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FD.CPPTYPE_UINT64: (0, 2**64 - 1),
}


def _scalar(field: Any, rnd: random.Random) -> Any:
    cpp = field.cpp_type
    if cpp in _INT_RANGES:
        low, high = _INT_RANGES[cpp]
        return rnd.choice([0, 1, -1 if low < 0 else 2, low, high, rnd.randint(low, high)])
    if cpp == FD.CPPTYPE_DOUBLE:
        return rnd.choice([0.0, -0.0, 1.5, -2.25e300, 1e-320, math.inf, -math.inf, rnd.random()])
    if cpp == FD.CPPTYPE_FLOAT:
        return rnd.choice([0.0, 1.5, 0.1, 3.4e38])
    if cpp == FD.CPPTYPE_BOOL:
        return rnd.random() < 0.5
    if cpp == FD.CPPTYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        if not field.enum_type.is_closed:
            numbers.append(max(numbers) + 7)  # a value from a newer server: printed as its number
        return rnd.choice(numbers)
    if field.type == FD.TYPE_BYTES:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(6)))
    return rnd.choice(
        ["", "a", "电话 +86 139", '"quoted"\n\\', "x" * rnd.randrange(40), "del\x7f \x01 😀 é\u2028"]
    )


def _fill_wkt(msg: Message, rnd: random.Random) -> bool:
    name = msg.DESCRIPTOR.full_name
    if name == "google.protobuf.Timestamp":
        low, high = -62_135_596_800, 253_402_300_799  # 0001-01-01 .. 9999-12-31
        seconds = rnd.choice([low, high, -1, 0, 86_399, rnd.randrange(low, high), rnd.randrange(0, 2**32)])
        msg.seconds = seconds  # type: ignore[attr-defined]
        msg.nanos = rnd.choice([0, 1000, 5_000_000, 123_456_789, 999_999_999])  # type: ignore[attr-defined]
        if rnd.random() < 0.05:  # out of range: the same error as json_format's
            msg.seconds, msg.nanos = rnd.choice([(high + 1, 0), (low - 1, 0), (0, -1)])  # type: ignore[attr-defined]
    elif name == "google.protobuf.Duration":
        msg.seconds, msg.nanos = rnd.choice([(0, 0), (3600, 0), (-5, -500), (1, 1)])  # type: ignore[attr-defined]
    elif name == "google.protobuf.FieldMask":
        msg.paths.extend(rnd.sample(["display_name", "contact.phone", "a_b.c_d"], rnd.randrange(3)))  # type: ignore[attr-defined]
    elif name == "google.protobuf.Struct":
        msg.update({"n": 1.5, "s": "x", "b": True, "z": None, "l": [1, "two", {"k": []}]})  # type: ignore[attr-defined]
    elif name == "google.protobuf.Value":
        msg.CopyFrom(struct_pb2.Value(string_value="v") if rnd.random() < 0.5 else struct_pb2.Value())
    elif name == "google.protobuf.Any":
        if rnd.random() < 0.5:
            msg.Pack(lead_pb2.Lead(lead_id="L1", score=3))  # type: ignore[attr-defined]
    elif msg.DESCRIPTOR.file.name == "google/protobuf/wrappers.proto":
        if rnd.random() < 0.7:  # a wrapper set to its default is still printed
            msg.value = _scalar(msg.DESCRIPTOR.fields_by_name["value"], rnd)  # type: ignore[attr-defined]
    else:
        return False
    return True


def fill(msg: Message, rnd: random.Random, depth: int = 0) -> Message:
    """Sets a random subset of `msg`'s fields (each oneof gets at most one)."""
    if _fill_wkt(msg, rnd):
        return msg
    for field in msg.DESCRIPTOR.fields:
        if rnd.random() < 0.35 or (depth > 3 and field.cpp_type == FD.CPPTYPE_MESSAGE):
            continue
        target = field.message_type
        if target is not None and target.GetOptions().map_entry:
            key_f, value_f = target.fields_by_name["key"], target.fields_by_name["value"]
            container = getattr(msg, field.name)
            for _ in range(rnd.randrange(3)):
                key = _scalar(key_f, rnd)
                if value_f.cpp_type == FD.CPPTYPE_MESSAGE:
                    fill(container[key], rnd, depth + 1)
                else:
                    container[key] = _scalar(value_f, rnd)
        elif field.is_repeated:
            container = getattr(msg, field.name)
            for _ in range(rnd.randrange(4)):
                if target is not None:
                    fill(container.add(), rnd, depth + 1)
                else:
                    container.append(_scalar(field, rnd))
        elif target is not None:
            fill(getattr(msg, field.name), rnd, depth + 1)
            if rnd.random() < 0.2:
                getattr(msg, field.name).SetInParent()  # present but empty
        else:
            setattr(msg, field.name, _scalar(field, rnd))
    return msg


def _same(msg: Message) -> None:
    try:
        expected = json_format.MessageToDict(msg)
    except json_format.SerializeToJsonError as exc:
        with pytest.raises(json_format.SerializeToJsonError) as caught:
            proto_json.to_dict(msg)
        assert str(caught.value) == str(exc)
        return
    got = proto_json.to_dict(msg)
    assert got == expected
    # Same key order and types, hence the same bytes on the wire.
    assert json.dumps(got, separators=(",", ":")) == json.dumps(expected, separators=(",", ":"))


@pytest.mark.parametrize("cls", RESPONSES, ids=lambda c: c.DESCRIPTOR.full_name)
def test_every_response_type_filled_at_random(cls: type[Message]) -> None:
    rnd = random.Random(cls.DESCRIPTOR.full_name)
    _same(cls())
    for _ in range(25):
        _same(fill(cls(), rnd))


def _lead(i: int) -> lead_pb2.Lead:
    lead = lead_pb2.Lead(
        lead_id=f"L{i:05d}",
        display_name=f"Acme {i} 电话",
        status=lead_pb2.LEAD_STATUS_ASSIGNED,
        owner_user_id="u1",
        score=i % 100,
        intake_count=2,
        etag=str(i),
        caller_can_claim=bool(i % 2),
    )
    json_format.ParseDict(
        {
            "contact": {"phone": "+8613900000000", "email": "a@example.com"},
            "firstResponse": {"state": "FIRST_RESPONSE_STATE_PENDING", "dueTime": "2026-12-06T10:00:00Z"},
            "audit": {"createTime": "2026-12-06T09:00:00.123Z", "createdBy": "bench"},
        },
        lead,
        ignore_unknown_fields=True,
    )
    return lead


def test_leads_as_the_service_answers_them() -> None:
    leads = [_lead(i) for i in range(40)]
    _same(pb.GetLeadResponse(lead=leads[0]))
    _same(pb.ListLeadsResponse(leads=leads, total_size=1001, next_page_token="t0k"))


def test_to_json_bytes_uses_it_for_whole_and_partial_bodies() -> None:
    rnd = random.Random(7)
    for route in ROUTES:
        if route.server_streaming:
            continue
        msg = fill(route.response_cls(), rnd)
        expected = _route_expected(route, msg)
        if expected is not None:
            assert transcode.to_json_bytes(route, msg) == expected


def _route_expected(route: Any, msg: Message) -> bytes | None:
    """What json_format makes of the route's answer (its body field alone when it names one); None
    where json_format refuses the message, after checking the gateway refuses it too."""
    try:
        value: Any = json_format.MessageToDict(msg)
    except json_format.SerializeToJsonError:
        with pytest.raises(json_format.SerializeToJsonError):
            transcode.to_json_bytes(route, msg)
        return None
    if route.response_body:
        value = value.get(msg.DESCRIPTOR.fields_by_name[route.response_body].json_name)
    return json.dumps(value, separators=(",", ":")).encode()


@pytest.fixture
def memo() -> Any:
    """proto_json.MEMO on, as the gateway runs it (create_app), and off again after."""
    before = proto_json.MEMO.budget
    proto_json.MEMO.resize(4 << 20)
    yield proto_json.MEMO
    proto_json.MEMO.resize(before)


def test_to_json_bytes_with_the_memo_answers_the_same_bytes(memo: Any) -> None:
    rnd = random.Random(11)
    for route in ROUTES:
        if route.server_streaming:
            continue
        for _ in range(3):
            msg = fill(route.response_cls(), rnd)
            expected = _route_expected(route, msg)
            if expected is None:
                continue
            assert transcode.to_json_bytes(route, msg) == expected  # converted (and kept)
            assert transcode.to_json_bytes(route, msg) == expected  # from the memo
    assert memo.used > 0


def _list_route() -> Any:
    return next(r for r in ROUTES if r.grpc_path == "/salesops.leads.v1.LeadsService/ListLeads")


def _expected(msg: Message) -> bytes:
    return json.dumps(json_format.MessageToDict(msg), separators=(",", ":")).encode()


def test_memo_is_keyed_by_content(memo: Any) -> None:
    route = _list_route()
    leads = [_lead(i) for i in range(3)]
    page = pb.ListLeadsResponse(leads=leads)
    assert transcode.to_json_bytes(route, page) == _expected(page)
    entries = sum(len(t) for t in memo.tables)
    assert entries == 3  # the leads (resource-sized), not the page nor their parts
    page.leads[1].score = 77  # the same lead, changed: its new form, never the kept one
    page.leads[2].contact.phone = "+8613911111111"
    got = transcode.to_json_bytes(route, page)
    assert got == _expected(page)
    assert b'"score":77' in got and b"+8613911111111" in got
    assert sum(len(t) for t in memo.tables) == 5


def test_memo_stays_within_its_budget(memo: Any) -> None:
    route = _list_route()
    memo.resize(20_000)
    for i in range(200):
        page = pb.ListLeadsResponse(leads=[_lead(i)])
        assert transcode.to_json_bytes(route, page) == _expected(page)
        assert memo.used <= 20_000
    assert 0 < sum(len(t) for t in memo.tables) < 200
    memo.resize(1000)  # every lead is more than an eighth of it: none kept, all answered
    page = pb.ListLeadsResponse(leads=[_lead(1), _lead(2)])
    assert transcode.to_json_bytes(route, page) == _expected(page)
    assert memo.used == 0 and not any(memo.tables)


def test_memo_off_converts_every_time() -> None:
    before = proto_json.MEMO.budget
    proto_json.MEMO.resize(0)
    try:
        page = pb.ListLeadsResponse(leads=[_lead(1)])
        assert transcode.to_json_bytes(_list_route(), page) == _expected(page)
        assert proto_json.MEMO.used == 0 and not any(proto_json.MEMO.tables)
    finally:
        proto_json.MEMO.resize(before)


def _get_route() -> Any:
    return next(r for r in ROUTES if r.grpc_path == "/salesops.leads.v1.LeadsService/GetLead")


def test_answer_json_from_wire_bytes_answers_what_the_message_does(memo: Any) -> None:
    rnd = random.Random(13)
    for route in ROUTES:
        if route.server_streaming:
            continue
        for _ in range(3):
            raw = fill(route.response_cls(), rnd).SerializeToString()
            # As the gateway saw it before: the message parsed from the wire (a map's order is its own)
            expected = _route_expected(route, route.response_cls.FromString(raw))
            if expected is None:
                continue
            assert transcode.answer_json(route, raw) == expected  # parsed, converted (and kept)
            assert transcode.answer_json(route, raw) == expected  # from the memo


def test_answer_json_is_keyed_by_bytes_and_type(memo: Any) -> None:
    page = pb.ListLeadsResponse(leads=[_lead(i) for i in range(3)], total_size=3)
    raw = page.SerializeToString()
    assert len(raw) >= transcode.ANSWER_MIN_BYTES
    assert transcode.answer_json(_list_route(), raw) == _expected(page)
    page.leads[1].score = 77  # a changed page is other bytes: its own JSON, never the kept one
    got = transcode.answer_json(_list_route(), page.SerializeToString())
    assert got == _expected(page) and b'"score":77' in got
    # The same bytes as another type's answer are that type's JSON (a Lead's field 1 is `lead`).
    one = pb.GetLeadResponse(lead=_lead(5))
    wire = one.SerializeToString()
    assert transcode.answer_json(_list_route(), wire) == _expected(pb.ListLeadsResponse.FromString(wire))
    assert transcode.answer_json(_get_route(), wire) == _expected(one)
    assert transcode.answer_json(_list_route(), wire) == _expected(pb.ListLeadsResponse.FromString(wire))


def test_answer_json_keeps_no_short_answer_and_nothing_with_the_memo_off(memo: Any) -> None:
    short = pb.ListLeadsResponse(total_size=3, next_page_token="t")
    raw = short.SerializeToString()
    assert len(raw) < transcode.ANSWER_MIN_BYTES
    memo.clear()
    assert transcode.answer_json(_list_route(), raw) == _expected(short)
    assert memo.used == 0
    memo.resize(0)
    page = pb.ListLeadsResponse(leads=[_lead(1)])
    assert transcode.answer_json(_list_route(), page.SerializeToString()) == _expected(page)
    assert memo.used == 0 and not any(memo.tables)
