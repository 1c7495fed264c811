"""presenters.put_body: a lead's body given as its stored JSON text (lead_reads on SQLite) is the
message parse_into makes of the decoded dict, the first time (parsed) and every time after (the
memo's serialized copy merged), for random leads; a null or empty body shows nothing."""

from __future__ import annotations

import json
import random

import pytest
from google.protobuf import json_format

from kit.memo import BytesMemo
from salesops.leads.v1 import lead_pb2
from services.leads import presenters, proto_dict
from tests.leads.test_proto_dict import _fill


def _parsed(d: object) -> lead_pb2.Lead:
    lead = lead_pb2.Lead()
    if d:
        proto_dict.parse_into(d, lead)
    return lead


@pytest.mark.parametrize("seed", range(4))
def test_text_bodies_present_as_their_dicts(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presenters, "_BODIES", BytesMemo(1 << 20))
    rnd = random.Random(seed)
    for _ in range(60):
        msg = lead_pb2.Lead()
        _fill(rnd, msg, 0, tame=True)
        d = json_format.MessageToDict(msg, preserving_proto_field_name=True)
        text = json.dumps(d, ensure_ascii=rnd.random() < 0.5)
        expected = _parsed(d)
        for _ in range(2):  # parsed, then from the memo
            got = lead_pb2.Lead()
            presenters.put_body(text, got)
            assert got == expected
            assert got.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)
            assert json_format.MessageToDict(got) == json_format.MessageToDict(expected)
        assert text in presenters._BODIES


def test_a_dict_body_is_parsed_as_before() -> None:
    d = {"contact": {"name": "李明", "phone": "+8613900000000"}, "tags": ["vip"]}
    got = lead_pb2.Lead()
    presenters.put_body(d, got)
    assert got == _parsed(d)


@pytest.mark.parametrize("text", ["null", "{}"])
def test_empty_bodies_show_nothing(text: str) -> None:
    for _ in range(2):
        got = lead_pb2.Lead()
        presenters.put_body(text, got)
        assert got == lead_pb2.Lead() and not got.HasField("contact")


def test_an_empty_submessage_stays_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presenters, "_BODIES", BytesMemo(1 << 20))
    for _ in range(2):
        got = lead_pb2.Lead()
        presenters.put_body('{"contact": {}}', got)
        assert got.HasField("contact")


def test_the_memo_is_bounded_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    memo: BytesMemo[str, bytes] = BytesMemo(8 * 1024)
    monkeypatch.setattr(presenters, "_BODIES", memo)
    for i in range(200):  # bodies of ~300 bytes: far more than the budget holds
        presenters.put_body(json.dumps({"display_name": f"n{i}", "tags": ["x" * 100]}), lead_pb2.Lead())
        assert 0 < memo.used <= memo.budget
    large = json.dumps({"display_name": "large", "tags": ["x" * 2000]})
    presenters.put_body(large, lead_pb2.Lead())
    assert large not in memo  # over an eighth of the budget: not kept
