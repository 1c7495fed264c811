"""Assignment decisions: a routing outcome (domain/routing.Decision) as the stored, explainable trace."""

from __future__ import annotations

from datetime import datetime

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


def record(uow: UnitOfWork, msg: routing_pb2.AssignmentDecision, at: datetime) -> None:
    add_row(
        uow, DecisionRow, decision_id=msg.decision_id, lead_id=msg.lead_id, decide_time=at, body=to_dict(msg)
    )
