"""decisions.decision_body is the stored trace decision_proto's message would give (to_dict, and
json_format itself), for random decisions: every field set or not, zeros, -0.0, big numbers."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from google.protobuf import json_format

from salesops.leads.v1 import enums_pb2, routing_pb2
from services.leads import decisions
from services.leads.convert import to_dict
from services.leads.domain import routing


def _names(enum: Any) -> list[str]:
    """The stored names of an enum (its values without the prefix), the zero one as ""."""
    prefix = enum.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
    return ["" if v.number == 0 else v.name.removeprefix(prefix) for v in enum.DESCRIPTOR.values]


REASONS = _names(enums_pb2.AssignmentReason)
STRATEGIES = _names(enums_pb2.RoutingStrategy)
SKIPS = [n for n in _names(routing_pb2.CandidateSkipReason) if n]


def _text(rnd: random.Random) -> str:
    return rnd.choice(["", "a", "east/team-a", "Rep 李", "x" * 40])


def _number(rnd: random.Random) -> int:
    return rnd.choice([0, 1, 7, -3, 2**31 - 1, -(2**31)])


def _double(rnd: random.Random) -> float:
    return rnd.choice([0.0, -0.0, 0.25, 1.0, 1 / 3, -2.5, 1e-12, 1e300])


def _decision(rnd: random.Random) -> routing.Decision:
    rules = [
        routing.RuleTried(
            _text(rnd),
            _text(rnd),
            _number(rnd),
            rnd.random() < 0.5,
            tuple(
                routing.Condition(_text(rnd), _text(rnd), _text(rnd), rnd.random() < 0.5)
                for _ in range(rnd.randrange(3))
            ),
        )
        for _ in range(rnd.randrange(4))
    ]
    candidates = [
        routing.Candidate(
            _text(rnd),
            _text(rnd),
            rnd.random() < 0.5,
            [rnd.choice(SKIPS) for _ in range(rnd.randrange(3))],
            _number(rnd),
            _number(rnd),
            _double(rnd),
            _number(rnd),
            _double(rnd),
            _number(rnd),
        )
        for _ in range(rnd.randrange(4))
    ]
    return routing.Decision(
        rules_tried=rules,
        candidates=candidates,
        winner=_text(rnd),
        team_path=_text(rnd),
        strategy=rnd.choice(STRATEGIES),
        pool_id=_text(rnd),
        fallback_used=rnd.random() < 0.5,
        summary=_text(rnd),
    )


@pytest.mark.parametrize("seed", range(300))
def test_decision_body_is_the_proto_as_stored(seed: int) -> None:
    rnd = random.Random(seed)
    d = _decision(rnd)
    lead: Any = SimpleNamespace(lead_id=rnd.choice(["", "L1", "01JXYZ"]))
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC) + timedelta(microseconds=rnd.choice([0, 1, 1000, 123456]))
    kw: dict[str, Any] = {
        "reason": rnd.choice(REASONS),
        "actor": _text(rnd),
        "at": at,
        "previous_owner": _text(rnd),
        "rules_version": rnd.choice([0, 1, 2**40]),
        "note": _text(rnd),
    }
    msg = decisions.decision_proto(d, lead, **kw)
    body = decisions.decision_body(d, lead, decision_id=msg.decision_id, **kw)
    assert body == to_dict(msg)
    assert body == json_format.MessageToDict(msg, preserving_proto_field_name=True)
    head = decisions.header(body)
    assert (head.decision_id, head.lead_id, head.actor_user_id, head.note) == (
        msg.decision_id,
        msg.lead_id,
        msg.actor_user_id,
        msg.note,
    )


def test_a_value_the_proto_refuses_is_refused() -> None:
    lead: Any = SimpleNamespace(lead_id="L1")
    at = datetime(2026, 1, 2, tzinfo=UTC)
    for bad in (2**31, True):
        cand = routing.Candidate("u", "U", True, [], bad, 1, 0.5, 1)  # type: ignore[arg-type]
        d = routing.Decision(candidates=[cand])
        with pytest.raises((TypeError, ValueError)):
            decisions.decision_body(
                d,
                lead,
                decision_id="D",
                reason="ROUTED",
                actor="a",
                at=at,
                previous_owner="",
                rules_version=1,
            )
