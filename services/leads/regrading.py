"""Grading after intake: behaviour events, re-grading a lead, and re-grading a tenant's open leads in batches."""

from __future__ import annotations

from datetime import datetime, timedelta

from ulid import ULID

from kit.auth import Principal
from kit.errors import Violations
from kit.resources import UnitOfWork
from salesops.leads.v1 import enums_pb2, events_pb2, lead_pb2
from services.leads import access, events, intake, ownership, policies, validation
from services.leads.convert import aware, enum_value, from_ts, parse, to_dict
from services.leads.domain import grading
from services.leads.policies import TenantPolicies
from services.leads.repositories.followups import BehaviorRepository
from services.leads.repositories.leads import LeadRepository
from services.leads.store import BehaviorRow, LeadRow

MAX_EVENT_BYTES = 16 * 1024
CLOCK_SKEW = timedelta(minutes=5)  # as for activities: a device clock may run a little ahead


async def add_behavior(
    uow: UnitOfWork, who: Principal, lead_id: str, event: lead_pb2.BehaviorEvent, at: datetime
) -> tuple[LeadRow, bool]:
    v = Violations()
    if not event.event_type:
        v.add("behavior_event.event_type", "required")
    if not event.HasField("occur_time"):
        v.add("behavior_event.occur_time", "required")
    elif (
        from_ts(event.occur_time, "behavior_event.occur_time") or at
    ) > at + CLOCK_SKEW:  # a future event would grade the lead up ahead of time
        v.add("behavior_event.occur_time", "in the future (beyond 5 minutes of clock skew)")
    if len(event.event_type) > 64:  # the column's width
        v.add("behavior_event.event_type", "at most 64 characters")
    if event.behavior_event_id and not validation.ID.match(event.behavior_event_id):
        v.add("behavior_event.behavior_event_id", "1-64 letters, digits, '-' or '_'")
    if event.ByteSize() > MAX_EVENT_BYTES:
        v.add("behavior_event", f"at most {MAX_EVENT_BYTES // 1024} KB")
    v.raise_if_any("invalid behaviour event")
    row = await LeadRepository(uow).visible(who, lead_id, for_update=True)
    # Seeing a pool lead is not enough to move its grade: behaviour comes from its owner's line
    # (or admins and partner systems, which see all).
    access.require_owner_or_manager(who, row)
    event_id = event.behavior_event_id or str(ULID())
    if await BehaviorRepository(uow).find(event_id) is not None:
        return row, False
    occur = from_ts(event.occur_time) or at
    uow.session.add(
        BehaviorRow(
            event_id=event_id,
            lead_id=lead_id,
            event_type=event.event_type,
            occur_time=occur,
            body=to_dict(event),
        )
    )
    await uow.session.flush()
    changed = await regrade(uow, row, at, "BEHAVIOR_EVENT")
    return row, changed


async def regrade(uow: UnitOfWork, row: LeadRow, at: datetime, trigger: str) -> bool:
    lead = lead_pb2.Lead()
    parse(row.body or {}, lead)
    rules = await policies.grading_rules(uow)
    result = grading.grade(intake.grading_facts(lead, await intake.behaviors_of(uow, row.lead_id)), rules, at)
    if result.grade == row.grade and result.score == row.score:
        return False
    previous_grade, previous_score = row.grade, row.score
    row.grade, row.score = result.grade, result.score
    row.grading = intake.grading_json(result, trigger, at)
    # An upgrade to a stricter grade switches a running clock to the stricter policy; a downgrade never relaxes it.
    if row.owner_user_id and row.sla_response_time is None and result.grade < (row.sla_grade or "D"):
        ownership.start_sla(row, await TenantPolicies.load(uow), aware(row.assign_time) or at)
    row.version += 1
    row.updated_at = at
    await events.publish(
        uow,
        events_pb2.LeadGraded(
            lead=events.context(row),
            previous_grade=enum_value(enums_pb2.LeadGrade, previous_grade),
            previous_score=previous_score,
            score=result.score,
            fired_rule_ids=[f.rule_id for f in result.fired],
            rules_version=result.version,
            trigger=enum_value(lead_pb2.GradingTrigger, trigger),
        ),
        row.lead_id,
    )
    return True


async def regrade_batch(uow: UnitOfWork, after: str, size: int, at: datetime) -> tuple[int, str]:
    """Re-grade up to `size` open leads with ids after `after`, with the current rules.

    Returns (leads whose grade or score changed, the last id seen; "" when none are left). Running
    SLA clocks keep their deadline unless a lead moves to a stricter grade. Re-running a batch is
    harmless: a lead already graded by these rules does not change again."""
    rows = await LeadRepository(uow).live_after(after, size)
    changed = 0
    for row in rows:
        changed += await regrade(uow, row, at, "RULES_CHANGED")
    return changed, rows[-1].lead_id if len(rows) == size else ""
