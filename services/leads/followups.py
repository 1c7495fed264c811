"""Follow-ups (activities, first contact), behaviour events with re-grading, conversion and disqualification."""

from __future__ import annotations

from datetime import datetime

from google.protobuf import field_mask_pb2
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from kit.auth import Principal
from kit.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PreconditionViolation,
    Violations,
)
from salesops.leads.v1 import activity_pb2, enums_pb2, events_pb2, lead_pb2
from services.leads import access, assignment, intake, policies
from services.leads.convert import aware, context, from_ts, long, parse, short, to_dict, ts
from services.leads.domain import grading, sla
from services.leads.store import ActivityRow, BehaviorRow, LeadRow

OPEN = ("ASSIGNED", "WORKING")


def activity_proto(row: ActivityRow) -> activity_pb2.Activity:
    msg = activity_pb2.Activity()
    parse(row.body or {}, msg)
    msg.activity_id, msg.lead_id, msg.actor_user_id = row.activity_id, row.lead_id, row.actor_user_id
    msg.first_response = row.first_response
    msg.etag = str(row.version)
    msg.audit.create_time.CopyFrom(ts(row.created_at))
    msg.audit.created_by = row.actor_user_id
    return msg


def _check(activity: activity_pb2.Activity, follow_up: activity_pb2.Activity | None, policy: object) -> None:
    v = Violations()
    if not activity.activity_type:
        v.add("activity.activity_type", "required")
    if not activity.HasField("occur_time"):
        v.add("activity.occur_time", "required")
    if activity.activity_id and not intake._ID.match(activity.activity_id):
        v.add("activity.activity_id", "1-64 letters, digits, '-' or '_'")
    completed = activity.state in (
        activity_pb2.ACTIVITY_STATE_COMPLETED,
        activity_pb2.ACTIVITY_STATE_UNSPECIFIED,
    )
    if completed and not activity.outcome:
        v.add("activity.outcome", "required for a completed activity")
    if completed and not getattr(policy, "allow_missing_next_step", False):
        if not activity.next_step.action:
            v.add("activity.next_step.action", "lock the next step")
        if not activity.next_step.HasField("due_date"):
            v.add("activity.next_step.due_date", "lock the next step's date")
    if activity.activity_type == enums_pb2.ACTIVITY_TYPE_VISIT and not activity.visit.HasField("check_in"):
        v.add("activity.visit.check_in", "a visit needs a GPS check-in")
    v.raise_if_any("invalid activity")


def _missing_units(activity: activity_pb2.Activity, policy: object) -> list[PreconditionViolation]:
    done = {u.unit_id: u for u in activity.action_units if u.done}
    missing: list[PreconditionViolation] = []
    for unit in getattr(policy, "action_units", ()):
        applies = list(unit.activity_types) or [enums_pb2.ACTIVITY_TYPE_VISIT]
        if not unit.required or activity.activity_type not in applies:
            continue
        got = done.get(unit.unit_id)
        if got is None:
            missing.append(
                PreconditionViolation(
                    "ACTION_UNIT", unit.unit_id, f"{unit.display_name or unit.unit_id} not done"
                )
            )
        elif unit.evidence == 2 and not got.note:
            missing.append(PreconditionViolation("ACTION_UNIT_EVIDENCE", unit.unit_id, "needs a note"))
        elif unit.evidence == 3 and not got.attachments:
            missing.append(PreconditionViolation("ACTION_UNIT_EVIDENCE", unit.unit_id, "needs an attachment"))
    return missing


async def _completed(
    session: AsyncSession,
    who: Principal,
    row: LeadRow,
    activity: activity_pb2.Activity,
    activity_id: str,
    occur: datetime,
) -> bool:
    """A completed activity: counters, next step, clocks; True when it is the first qualifying response."""
    lead_id = row.lead_id
    row.activity_count += 1
    last = aware(row.last_activity_time)
    row.last_activity_time = occur if last is None or occur > last else last
    row.status = "WORKING"
    row.needs_attention = row.recycle_warned = False
    if activity.HasField("next_step"):
        body = dict(row.body or {})
        body["next_step"] = to_dict(activity.next_step)
        row.body = body
    sla_policies = policies.sla_policies(await policies.load(session, policies.SLA))
    policy = sla_policies.for_grade(row.sla_grade)
    if row.sla_state not in (sla.PENDING, sla.BREACHED) or not sla.qualifies(
        policy,
        short(enums_pb2.ActivityType, activity.activity_type),
        short(enums_pb2.ActivityOutcome, activity.outcome),
        True,
    ):
        return False
    due = aware(row.sla_due)
    start = aware(row.sla_start) or occur
    row.sla_state = sla.MET if due is not None and occur <= due else sla.RESPONDED_LATE
    row.sla_response_time, row.sla_response_activity_id, row.sla_responder = occur, activity_id, who.user_id
    btr = policies.CALENDAR.business_time_between(start, max(occur, start))
    row.sla_business_seconds = btr.total_seconds()
    evt = events_pb2.FirstResponseRecorded(
        lead=context(row),
        activity_id=activity_id,
        responder_user_id=who.user_id,
        policy_grade=long(enums_pb2.LeadGrade, row.sla_grade),
        within_sla=row.sla_state == sla.MET,
    )
    evt.clock_start_time.CopyFrom(ts(start))
    evt.due_time.CopyFrom(ts(due))
    evt.response_time.CopyFrom(ts(occur))
    evt.business_time_to_respond.FromTimedelta(btr)
    await assignment.publish(session, "FirstResponseRecorded", evt, lead_id)
    return True


async def update_activity(
    session: AsyncSession, who: Principal, activity: activity_pb2.Activity, paths: list[str], at: datetime
) -> tuple[ActivityRow, LeadRow]:
    """Complete an activity started at check-in, or amend notes and attachments of a completed one."""
    if not paths:
        raise InvalidArgument.field("update_mask", "name the fields to change")
    arow = await session.get(ActivityRow, (who.tenant, activity.activity_id))
    if arow is None or arow.lead_id != activity.lead_id:
        raise NotFound("activity", activity.activity_id)
    row = await access.load_visible(session, who, arow.lead_id, for_update=True)
    if arow.actor_user_id != who.user_id and not access.manages(who, row.team_path):
        raise PermissionDenied("only the rep who logged it (or a manager) may change it", reason="NOT_ACTOR")
    if activity.etag and activity.etag != str(arow.version):
        raise Aborted("the activity changed meanwhile", reason="STALE_ETAG")
    was_completed = arow.state == "COMPLETED"
    allowed = (
        {"summary", "attachments"}
        if was_completed
        else {
            "state",
            "outcome",
            "summary",
            "next_step",
            "attachments",
            "action_units",
            "duration",
            "direction",
            "call",
            "email",
            "message",
            "visit",
            "demo",
        }
    )
    for p in paths:
        if p.split(".")[0] not in allowed:
            why = (
                "a completed activity keeps its type, time and outcome" if was_completed else "not changeable"
            )
            raise InvalidArgument.field("update_mask", f"{p!r}: {why}")
    current = activity_proto(arow)
    field_mask_pb2.FieldMask(paths=paths).MergeMessage(
        activity, current, replace_message_field=True, replace_repeated_field=True
    )
    now_completed = current.state == activity_pb2.ACTIVITY_STATE_COMPLETED
    first = arow.first_response
    if now_completed and not was_completed:
        follow_up = await policies.load(session, policies.FOLLOW_UP)
        _check(current, None, follow_up)
        missing = _missing_units(current, follow_up)
        if missing:
            raise FailedPrecondition(
                "mandatory action units are missing", missing, reason="ACTION_UNITS_MISSING"
            )
        first = await _completed(
            session, who, row, current, arow.activity_id, min(aware(arow.occur_time) or at, at)
        )
        row.version += 1
        row.updated_at = at
    body = to_dict(current)
    for k in ("activity_id", "lead_id", "actor_user_id", "etag", "audit", "first_response"):
        body.pop(k, None)
    arow.body, arow.state, arow.first_response = body, short(activity_pb2.ActivityState, current.state), first
    arow.version += 1
    if now_completed and not was_completed:
        logged = events_pb2.ActivityLogged(
            lead=context(row),
            activity_id=arow.activity_id,
            activity_type=current.activity_type,
            state=current.state,
            outcome=current.outcome,
            actor_user_id=arow.actor_user_id,
            first_response=first,
        )
        logged.occur_time.CopyFrom(ts(arow.occur_time))
        await assignment.publish(session, "ActivityLogged", logged, row.lead_id)
    return arow, row


async def create_activity(
    session: AsyncSession, who: Principal, lead_id: str, activity: activity_pb2.Activity, at: datetime
) -> tuple[ActivityRow, LeadRow]:
    row = await access.load_visible(session, who, lead_id, for_update=True)
    if activity.activity_id:
        existing = await session.get(ActivityRow, (row.tenant_id, activity.activity_id))
        if existing is not None:  # offline replay
            return existing, row
    if row.status not in OPEN:
        raise FailedPrecondition(f"lead {lead_id} is {row.status}: claim it first", reason="NOT_OWNED")
    access.require_owner_or_manager(who, row)
    follow_up = await policies.load(session, policies.FOLLOW_UP)
    _check(activity, None, follow_up)
    if not activity.state:
        activity.state = activity_pb2.ACTIVITY_STATE_COMPLETED
    completed = activity.state == activity_pb2.ACTIVITY_STATE_COMPLETED
    if completed:
        missing = _missing_units(activity, follow_up)
        if missing:
            raise FailedPrecondition(
                "mandatory action units are missing", missing, reason="ACTION_UNITS_MISSING"
            )
    occur = from_ts(activity.occur_time) or at
    occur = min(occur, at)  # a clock ahead of ours cannot answer an SLA early
    activity_id = activity.activity_id or str(ULID())
    for checkin in (activity.visit.check_in, activity.demo.check_in):
        if checkin.HasField("location"):
            checkin.location_verified = False  # leads carry no coordinates to compare with yet
    first = await _completed(session, who, row, activity, activity_id, occur) if completed else False
    row.version += 1
    row.updated_at = at
    activity.first_response = first
    body = to_dict(activity)
    for k in ("activity_id", "lead_id", "actor_user_id", "etag", "audit", "first_response"):
        body.pop(k, None)
    arow = ActivityRow(
        activity_id=activity_id,
        lead_id=lead_id,
        actor_user_id=who.user_id,
        activity_type=short(enums_pb2.ActivityType, activity.activity_type),
        state=short(activity_pb2.ActivityState, activity.state),
        occur_time=occur,
        first_response=first,
        body=body,
        created_at=at,
    )
    session.add(arow)
    logged = events_pb2.ActivityLogged(
        lead=context(row),
        activity_id=activity_id,
        activity_type=activity.activity_type,
        state=activity.state,
        outcome=activity.outcome,
        actor_user_id=who.user_id,
        first_response=first,
    )
    logged.occur_time.CopyFrom(ts(occur))
    if activity.next_step.HasField("due_date"):
        logged.next_step_due_date.CopyFrom(activity.next_step.due_date)
    await assignment.publish(session, "ActivityLogged", logged, lead_id)
    return arow, row


async def list_activities(
    session: AsyncSession, who: Principal, lead_id: str, limit: int
) -> list[ActivityRow]:
    """A lead's activities, newest first; lead "-" lists across the leads visible to the caller."""
    stmt = select(ActivityRow)
    if lead_id == "-":
        visible = select(LeadRow.lead_id).where(access.visible(who))
        stmt = stmt.where(ActivityRow.lead_id.in_(visible))
    else:
        await access.load_visible(session, who, lead_id)
        stmt = stmt.where(ActivityRow.lead_id == lead_id)
    stmt = stmt.order_by(ActivityRow.occur_time.desc(), ActivityRow.activity_id).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def add_behavior(
    session: AsyncSession, who: Principal, lead_id: str, event: lead_pb2.BehaviorEvent, at: datetime
) -> tuple[LeadRow, bool]:
    v = Violations()
    if not event.event_type:
        v.add("behavior_event.event_type", "required")
    if not event.HasField("occur_time"):
        v.add("behavior_event.occur_time", "required")
    v.raise_if_any("invalid behaviour event")
    row = await access.load_visible(session, who, lead_id, for_update=True)
    event_id = event.behavior_event_id or str(ULID())
    if await session.get(BehaviorRow, (row.tenant_id, event_id)) is not None:
        return row, False
    occur = from_ts(event.occur_time) or at
    session.add(
        BehaviorRow(
            event_id=event_id,
            lead_id=lead_id,
            event_type=event.event_type,
            occur_time=occur,
            body=to_dict(event),
        )
    )
    await session.flush()
    changed = await regrade(session, row, at, "BEHAVIOR_EVENT")
    return row, changed


async def regrade(session: AsyncSession, row: LeadRow, at: datetime, trigger: str) -> bool:
    lead = lead_pb2.Lead()
    parse(row.body or {}, lead)
    rules = policies.grading_rules(await policies.load(session, policies.GRADING))
    result = grading.grade(
        intake.grading_facts(lead, await intake.behaviors_of(session, row.lead_id)), rules, at
    )
    if result.grade == row.grade and result.score == row.score:
        return False
    previous_grade, previous_score = row.grade, row.score
    row.grade, row.score = result.grade, result.score
    row.grading = intake.grading_json(result, trigger, at)
    # An upgrade to a stricter grade switches a running clock to the stricter policy; a downgrade never relaxes it.
    if row.owner_user_id and row.sla_response_time is None and result.grade < (row.sla_grade or "D"):
        settings = await assignment.Settings.load(session)
        assignment.start_sla(row, settings, aware(row.assign_time) or at)
    row.version += 1
    row.updated_at = at
    await assignment.publish(
        session,
        "LeadGraded",
        events_pb2.LeadGraded(
            lead=context(row),
            previous_grade=long(enums_pb2.LeadGrade, previous_grade),
            previous_score=previous_score,
            score=result.score,
            fired_rule_ids=[f.rule_id for f in result.fired],
            rules_version=result.version,
            trigger=long(lead_pb2.GradingTrigger, trigger),
        ),
        row.lead_id,
    )
    return True


async def convert(
    session: AsyncSession,
    who: Principal,
    lead_id: str,
    at: datetime,
    *,
    opportunity_id: str,
    name: str,
    note: str,
    etag: str,
    request: object,
) -> LeadRow:
    row = await access.load_visible(session, who, lead_id, for_update=True)
    if row.status == "CONVERTED":
        return row  # repeat: same answer
    assignment.check_etag(row, etag)
    if row.status not in OPEN:
        raise FailedPrecondition(
            f"lead {lead_id} is {row.status}; only owned leads convert", reason="NOT_OWNED"
        )
    access.require_owner_or_manager(who, row)
    if opportunity_id and not intake._ID.match(opportunity_id):
        raise InvalidArgument.field("opportunity_id", "1-64 letters, digits, '-' or '_'")
    lead = lead_pb2.Lead()
    parse(row.body or {}, lead)
    opp = opportunity_id or str(ULID())
    row.status, row.converted_opportunity_id, row.close_time = "CONVERTED", opp, at
    if row.sla_state == sla.PENDING:
        row.sla_state = sla.CANCELLED
    row.version += 1
    row.updated_at = at
    evt = events_pb2.LeadConverted(
        lead=context(row),
        opportunity_id=opp,
        opportunity_name=name or row.display_name,
        owner_user_id=row.owner_user_id or "",
        team_path=row.team_path,
        region=row.region,
        company=lead.company,
        contact_name=lead.contact.name,
        contact_job_title=lead.contact.job_title,
        product_lines=list(getattr(request, "product_lines", None) or lead.product_lines),
        channel=lead.source.channel,
        source_code=lead.source.source_code,
        campaign_id=lead.source.campaign_id,
        score=row.score,
        note=note,
        actor_user_id=who.user_id,
    )
    amount = getattr(request, "amount_estimate", None)
    if amount is not None and request.HasField("amount_estimate"):  # type: ignore[attr-defined]
        evt.amount_estimate.CopyFrom(amount)
    elif lead.HasField("amount_estimate"):
        evt.amount_estimate.CopyFrom(lead.amount_estimate)
    elif lead.HasField("stated_budget"):
        evt.amount_estimate.CopyFrom(lead.stated_budget)
    if request is not None and request.HasField("expected_close_date"):  # type: ignore[attr-defined]
        evt.expected_close_date.CopyFrom(request.expected_close_date)  # type: ignore[attr-defined]
    evt.lead_create_time.CopyFrom(ts(row.created_at))
    evt.convert_time.CopyFrom(ts(at))
    await assignment.publish(session, "LeadConverted", evt, lead_id)
    return row


async def disqualify(
    session: AsyncSession, who: Principal, lead_id: str, at: datetime, *, reason: int, note: str, etag: str
) -> LeadRow:
    if not reason:
        raise InvalidArgument.field("reason", "required")
    if reason == lead_pb2.DISQUALIFY_REASON_OTHER and not note.strip():
        raise InvalidArgument.field("note", "required when the reason is OTHER")
    row = await access.load_visible(session, who, lead_id, for_update=True)
    assignment.check_etag(row, etag)
    if row.status in ("CONVERTED", "DISQUALIFIED", "MERGED"):
        raise FailedPrecondition(f"lead {lead_id} is already {row.status}", reason="LEAD_CLOSED")
    if row.status == "IN_POOL":
        if not access.manages(who, row.team_path) and not who.has_role("supervisor", "director"):
            raise FailedPrecondition("claim the lead before closing it", reason="NOT_OWNED")
    else:
        access.require_owner_or_manager(who, row)
    body = dict(row.body or {})
    body["disqualify_reason"] = lead_pb2.DisqualifyReason.Name(reason)  # type: ignore[arg-type]
    body["disqualify_note"] = note
    row.body = body
    row.status, row.close_time = "DISQUALIFIED", at
    if row.sla_state == sla.PENDING:
        row.sla_state = sla.CANCELLED
    row.version += 1
    row.updated_at = at
    await assignment.publish(
        session,
        "LeadDisqualified",
        events_pb2.LeadDisqualified(lead=context(row), reason=reason, actor_user_id=who.user_id),  # type: ignore[arg-type]
        lead_id,
    )
    return row
