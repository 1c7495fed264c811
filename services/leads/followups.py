"""Follow-ups: logging, completing and listing activities; the first qualifying contact stops the clock.

Activity times are bounded: not before the lead existed or was (last) assigned, and not in the future
beyond a small clock skew, so a backdated call cannot make a missed first-response SLA look met.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from google.protobuf.field_mask_pb2 import FieldMask
from ulid import ULID

from kit.auth import Principal
from kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PreconditionViolation,
    Violations,
)
from kit.resources import Page, PageRequest, UnitOfWork, merge_update, sanitize_create
from salesops.leads.v1 import activity_pb2, enums_pb2, events_pb2
from services.leads import access, events, policies, validation
from services.leads.convert import aware, enum_name, enum_value, from_ts, to_dict, ts
from services.leads.domain import sla, status
from services.leads.policies import TenantPolicies
from services.leads.presenters import ACTIVITIES
from services.leads.repositories.followups import ActivityRepository, ActivitySearch
from services.leads.repositories.leads import LeadRepository
from services.leads.store import ActivityRow, LeadRow

CLOCK_SKEW = timedelta(minutes=5)  # how far a device clock may run ahead of ours (or behind the assignment)
NOT_IN_BODY = ("activity_id", "lead_id", "actor_user_id", "etag", "audit", "first_response")


def bounded_time(row: LeadRow, occur: datetime, at: datetime) -> datetime:
    """The activity's time, checked against the lead's life and our clock (INVALID_ARGUMENT outside)."""
    if occur > at + CLOCK_SKEW:
        raise InvalidArgument.field("activity.occur_time", "in the future (beyond 5 minutes of clock skew)")
    since = max(t for t in (aware(row.created_at), aware(row.assign_time)) if t is not None)
    if occur < since - CLOCK_SKEW:
        raise InvalidArgument.field(
            "activity.occur_time", "before the lead was created or assigned to its current owner"
        )
    # Within the skew: never earlier than the clock start, never later than now.
    return min(max(occur, since), at)


def _check(activity: activity_pb2.Activity, follow_up: activity_pb2.Activity | None, policy: object) -> None:
    v = Violations()
    if not activity.activity_type:
        v.add("activity.activity_type", "required")
    elif not validation.known_enum(enums_pb2.ActivityType, activity.activity_type):
        v.add("activity.activity_type", "one of the ActivityType values")
    if activity.ByteSize() > validation.MAX_MESSAGE_BYTES:
        v.add("activity", f"at most {validation.MAX_MESSAGE_BYTES // 1024} KB")
    if not activity.HasField("occur_time"):
        v.add("activity.occur_time", "required")
    if activity.activity_id and not validation.ID.match(activity.activity_id):
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
    uow: UnitOfWork,
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
    row.status = status.next_status(row.status, status.Action.CONTACT)
    row.needs_attention = row.recycle_warned = False
    if activity.HasField("next_step"):
        body = dict(row.body or {})
        body["next_step"] = to_dict(activity.next_step)
        row.body = body
    policy = (await TenantPolicies.load(uow)).sla.for_grade(row.sla_grade)
    if row.sla_state not in (sla.PENDING, sla.BREACHED) or not sla.qualifies(
        policy,
        enum_name(enums_pb2.ActivityType, activity.activity_type),
        enum_name(enums_pb2.ActivityOutcome, activity.outcome),
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
        lead=events.context(row),
        activity_id=activity_id,
        responder_user_id=who.user_id,
        policy_grade=enum_value(enums_pb2.LeadGrade, row.sla_grade),
        within_sla=row.sla_state == sla.MET,
    )
    evt.clock_start_time.CopyFrom(ts(start))
    evt.due_time.CopyFrom(ts(due))
    evt.response_time.CopyFrom(ts(occur))
    evt.business_time_to_respond.FromTimedelta(btr)
    await events.publish(uow, evt, lead_id)
    return True


async def update_activity(
    uow: UnitOfWork, who: Principal, activity: activity_pb2.Activity, paths: list[str], at: datetime
) -> tuple[ActivityRow, LeadRow]:
    """Complete an activity started at check-in, or amend notes and attachments of a completed one."""
    if not paths:
        raise InvalidArgument.field("update_mask", "name the fields to change")
    activities = ActivityRepository(uow)
    arow = await activities.find(activity.activity_id)
    if arow is None or arow.lead_id != activity.lead_id:
        raise NotFound(ActivityRepository.resource, activity.activity_id)
    row = await LeadRepository(uow).visible(who, arow.lead_id, for_update=True)
    if arow.actor_user_id != who.user_id and not access.manages(who, row.team_path):
        raise PermissionDenied("only the rep who logged it (or a manager) may change it", reason="NOT_ACTOR")
    activities.check_etag(arow, activity.etag)
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
    current = merge_update(ACTIVITIES.present(who, arow), activity, FieldMask(paths=paths))
    now_completed = current.state == activity_pb2.ACTIVITY_STATE_COMPLETED
    first = arow.first_response
    if now_completed and not was_completed:
        follow_up = await policies.load(uow, policies.FOLLOW_UP)
        _check(current, None, follow_up)
        missing = _missing_units(current, follow_up)
        if missing:
            raise FailedPrecondition(
                "mandatory action units are missing", missing, reason="ACTION_UNITS_MISSING"
            )
        first = await _completed(
            uow, who, row, current, arow.activity_id, min(aware(arow.occur_time) or at, at)
        )
        row.version += 1
        row.updated_at = at
    body = to_dict(current)
    for k in NOT_IN_BODY:
        body.pop(k, None)
    arow.body, arow.state, arow.first_response = (
        body,
        enum_name(activity_pb2.ActivityState, current.state),
        first,
    )
    arow.version += 1
    if now_completed and not was_completed:
        logged = events_pb2.ActivityLogged(
            lead=events.context(row),
            activity_id=arow.activity_id,
            activity_type=current.activity_type,
            state=current.state,
            outcome=current.outcome,
            actor_user_id=arow.actor_user_id,
            first_response=first,
        )
        logged.occur_time.CopyFrom(ts(arow.occur_time))
        await events.publish(uow, logged, row.lead_id)
    return arow, row


async def create_activity(
    uow: UnitOfWork, who: Principal, lead_id: str, activity: activity_pb2.Activity, at: datetime
) -> tuple[ActivityRow, LeadRow]:
    activity = sanitize_create(activity)  # first_response, actor, check-in verification are the server's
    row = await LeadRepository(uow).visible(who, lead_id, for_update=True)
    if activity.activity_id:
        existing = await ActivityRepository(uow).find(activity.activity_id)
        if existing is not None:
            if existing.lead_id == lead_id and existing.actor_user_id == who.user_id:
                return existing, row  # the offline replay of this rep's own activity
            # Someone else's activity id: say it is taken, show nothing of it.
            raise AlreadyExists("activity", activity.activity_id)
    if not status.is_open(row.status):
        raise FailedPrecondition(f"lead {lead_id} is {row.status}: claim it first", reason="NOT_OWNED")
    access.require_owner_or_manager(who, row)
    follow_up = await policies.load(uow, policies.FOLLOW_UP)
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
    occur = bounded_time(row, from_ts(activity.occur_time, "activity.occur_time") or at, at)
    activity.occur_time.CopyFrom(ts(occur))  # the time the server counts is the time it shows
    activity_id = activity.activity_id or str(ULID())
    for checkin in (activity.visit.check_in, activity.demo.check_in):
        if checkin.HasField("location"):
            checkin.location_verified = False  # leads carry no coordinates to compare with yet
    first = await _completed(uow, who, row, activity, activity_id, occur) if completed else False
    row.version += 1
    row.updated_at = at
    activity.first_response = first
    body = to_dict(activity)
    for k in NOT_IN_BODY:
        body.pop(k, None)
    arow = ActivityRow(
        activity_id=activity_id,
        lead_id=lead_id,
        actor_user_id=who.user_id,
        activity_type=enum_name(enums_pb2.ActivityType, activity.activity_type),
        state=enum_name(activity_pb2.ActivityState, activity.state),
        occur_time=occur,
        first_response=first,
        body=body,
        created_at=at,
    )
    uow.session.add(arow)
    logged = events_pb2.ActivityLogged(
        lead=events.context(row),
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
    await events.publish(uow, logged, lead_id)
    return arow, row


async def list_activities(
    uow: UnitOfWork, who: Principal, lead_id: str, search: ActivitySearch, page: PageRequest, query: str
) -> Page[ActivityRow]:
    """A lead's activities, newest first; lead "-" lists across the leads visible to the caller."""
    leads = LeadRepository(uow)
    if lead_id == "-":
        search.lead_ids = await leads.ids_visible_to(who)
    else:
        await leads.visible(who, lead_id)
        search.lead_ids = lead_id
    return await ActivityRepository(uow).search(search, page, query)
