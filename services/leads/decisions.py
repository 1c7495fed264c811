"""Assignment decisions: a routing outcome (domain/routing.Decision) as the stored, explainable trace."""

from __future__ import annotations

import functools
import math
from datetime import datetime
from typing import Any

from ulid import ULID

from kit.resources import UnitOfWork
from salesops.leads.v1 import enums_pb2, routing_pb2
from services.leads.convert import enum_value, to_dict, ts
from services.leads.domain import routing
from services.leads.repositories.intakes import add_row
from services.leads.store import DecisionRow, LeadRow


def decision_proto(
    d: routing.Decision,
    lead: LeadRow,
    *,
    reason: str,
    actor: str,
    at: datetime,
    previous_owner: str,
    rules_version: int,
    note: str = "",
) -> routing_pb2.AssignmentDecision:
    msg = routing_pb2.AssignmentDecision(
        decision_id=str(ULID()),
        lead_id=lead.lead_id,
        reason=enum_value(enums_pb2.AssignmentReason, reason),
        actor_user_id=actor,
        note=note,
        previous_owner_user_id=previous_owner,
        winner_user_id=d.winner,
        team_path=d.team_path,
        strategy=enum_value(enums_pb2.RoutingStrategy, d.strategy),
        pool_id=d.pool_id,
        fallback_used=d.fallback_used,
        routing_rules_version=rules_version,
        summary=d.summary,
    )
    msg.decide_time.CopyFrom(ts(at))
    for t in d.rules_tried:
        ev = msg.rules_tried.add(
            rule_id=t.rule_id, display_name=t.display_name, position=t.position, matched=t.matched
        )
        for c in t.conditions:
            ev.conditions.add(field=c.field, expected=c.expected, actual=c.actual, passed=c.passed)
    for cand in d.candidates:
        msg.candidates.add(
            user_id=cand.user_id,
            display_name=cand.display_name,
            eligible=cand.eligible,
            skip_reasons=[enum_value(routing_pb2.CandidateSkipReason, r) for r in cand.skip_reasons],
            open_lead_count=cand.open_leads,
            capacity=cand.capacity,
            load_ratio=cand.load_ratio,
            weight=cand.weight,
            score=cand.score,
            rank=cand.rank,
        )
    return msg


def record(
    uow: UnitOfWork, msg: routing_pb2.AssignmentDecision, at: datetime, body: Body | None = None
) -> None:
    """Store the decision; `body`: its to_dict, made already (decision_body; `msg` is its header)."""
    add_row(
        uow,
        DecisionRow,
        decision_id=msg.decision_id,
        lead_id=msg.lead_id,
        decide_time=at,
        body=to_dict(msg) if body is None else body,
    )


Body = dict[str, Any]


def decision_body(
    d: routing.Decision,
    lead: LeadRow,
    *,
    decision_id: str,
    reason: str,
    actor: str,
    at: datetime,
    previous_owner: str,
    rules_version: int,
    note: str = "",
) -> Body:
    """to_dict(decision_proto(...)) with that decision id, built straight from the decision: a
    routed lead's trace (its rules and a team's candidates) went through a proto and back to a dict,
    ~3% of a grouped CreateLead's server CPU. The same dict (tests/leads/test_decision_body.py):
    proto3 JSON's rules, an unset field left out, enums by name, int64 as text."""
    out: Body = {}
    _put(out, "decision_id", decision_id)
    _put(out, "lead_id", lead.lead_id)
    _put(out, "reason", _enum_name(enums_pb2.AssignmentReason, reason))
    out["decide_time"] = _time_text(at)
    _put(out, "actor_user_id", actor)
    _put(out, "note", note)
    _put(out, "previous_owner_user_id", previous_owner)
    _put(out, "winner_user_id", d.winner)
    _put(out, "team_path", d.team_path)
    _put(out, "strategy", _enum_name(enums_pb2.RoutingStrategy, d.strategy))
    _put(out, "pool_id", d.pool_id)
    _put(out, "fallback_used", bool(d.fallback_used))
    if rules_version:
        out["routing_rules_version"] = str(_int(rules_version, 64))
    if d.rules_tried:
        out["rules_tried"] = [_rule(t) for t in d.rules_tried]
    if d.candidates:
        out["candidates"] = [_candidate(c) for c in d.candidates]
    _put(out, "summary", d.summary)
    return out


def header(body: Body) -> routing_pb2.AssignmentDecision:
    """What ownership.apply_owner reads of a decision besides its stored body (its id, actor and
    note, for the LeadAssigned event): the rest of the trace stays in `body`."""
    return routing_pb2.AssignmentDecision(
        decision_id=body.get("decision_id", ""),
        lead_id=body.get("lead_id", ""),
        actor_user_id=body.get("actor_user_id", ""),
        note=body.get("note", ""),
    )


def _put(out: Body, key: str, value: Any) -> None:
    if value:
        out[key] = value


def _rule(t: routing.RuleTried) -> Body:
    out: Body = {}
    _put(out, "rule_id", t.rule_id)
    _put(out, "display_name", t.display_name)
    _put(out, "position", _int(t.position, 32))
    _put(out, "matched", bool(t.matched))
    if t.conditions:
        out["conditions"] = [_condition(c) for c in t.conditions]
    return out


def _condition(c: routing.Condition) -> Body:
    out: Body = {}
    _put(out, "field", c.field)
    _put(out, "expected", c.expected)
    _put(out, "actual", c.actual)
    _put(out, "passed", bool(c.passed))
    return out


def _candidate(c: routing.Candidate) -> Body:
    out: Body = {}
    _put(out, "user_id", c.user_id)
    _put(out, "display_name", c.display_name)
    _put(out, "eligible", bool(c.eligible))
    if c.skip_reasons:
        out["skip_reasons"] = [
            _enum_name(routing_pb2.CandidateSkipReason, r, keep_zero=True) for r in c.skip_reasons
        ]
    _put(out, "open_lead_count", _int(c.open_leads, 32))
    _put(out, "capacity", _int(c.capacity, 32))
    _double(out, "load_ratio", c.load_ratio)
    _put(out, "weight", _int(c.weight, 32))
    _double(out, "score", c.score)
    _put(out, "rank", _int(c.rank, 32))
    return out


def _double(out: Body, key: str, value: float) -> None:
    value = float(value)
    if not math.isfinite(value):  # proto3 JSON spells these as text: not here
        raise ValueError(f"{key} is not finite: {value}")
    if value or math.copysign(1.0, value) < 0:  # -0.0 is set, as json_format has it
        out[key] = value


def _int(value: int, bits: int) -> int:
    """As the proto field holds it (a bool or an out-of-range number refused as the proto would)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not an integer: {value!r}")
    low = -(1 << (bits - 1))
    if not low <= value < -low:
        raise ValueError(f"out of range for int{bits}: {value}")
    return value


@functools.cache
def _enum_name(enum: Any, name: str, keep_zero: bool = False) -> str:
    """The enum's full name of a stored name (enum_value's), "" for its zero (unset) unless it is
    an element of a repeated field."""
    number = enum_value(enum, name)
    if not number and not keep_zero:
        return ""
    return enum.Name(number)  # type: ignore[no-any-return]


def _time_text(at: datetime) -> str:
    return ts(at).ToJsonString()  # type: ignore[no-any-return]
