"""Row <-> proto conversions, enum names, time helpers and phone masking for answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from kit.auth import Principal
from salesops.leads.v1 import enums_pb2, events_pb2, lead_pb2
from services.leads.domain.normalize import mask_phone
from services.leads.store import LeadRow


def now() -> datetime:
    return datetime.now(UTC)


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if dt is None:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def ts(dt: datetime | None) -> Timestamp:
    """Timestamp of `dt`; the empty (unset) Timestamp for None."""
    t = Timestamp()
    if dt is not None:
        t.FromDatetime(dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC))
    return t


def from_ts(t: Timestamp) -> datetime | None:
    if not t.seconds and not t.nanos:
        return None
    return t.ToDatetime(tzinfo=UTC)


def short(enum: Any, value: int) -> str:
    """LEAD_CHANNEL_WEB_FORM -> WEB_FORM; UNSPECIFIED -> empty."""
    if not value:
        return ""
    name: str = enum.Name(value)
    prefix = enum.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
    return name.removeprefix(prefix)


def long(enum: Any, name: str) -> Any:
    """WEB_FORM -> LEAD_CHANNEL_WEB_FORM's value (typed Any: each proto enum is its own type)."""
    if not name:
        return 0
    prefix = enum.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
    return enum.Value(prefix + name)


def to_dict(msg: Message) -> dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def parse(data: dict[str, Any], msg: Message) -> Message:
    return json_format.ParseDict(data, msg, ignore_unknown_fields=True)


# What a caller may send on a lead; everything else is server-made.
_INPUT_FIELDS = (
    "display_name",
    "contact",
    "company",
    "source",
    "product_lines",
    "stated_budget",
    "amount_estimate",
    "expected_purchase_date",
    "region",
    "language_code",
    "description",
    "tags",
    "attributes",
    "form_completeness_percent",
)


def lead_body(lead: lead_pb2.Lead) -> dict[str, Any]:
    clean = lead_pb2.Lead()
    for name in _INPUT_FIELDS:
        if name in ("product_lines", "tags"):
            getattr(clean, name).extend(getattr(lead, name))
        elif name in ("display_name", "region", "language_code", "description"):
            setattr(clean, name, getattr(lead, name))
        elif name == "form_completeness_percent":
            clean.form_completeness_percent = lead.form_completeness_percent
        elif lead.HasField(name):  # type: ignore[arg-type]
            getattr(clean, name).CopyFrom(getattr(lead, name))
    return to_dict(clean)


def can_see_phone(who: Principal | None, row: LeadRow) -> bool:
    """Owner, or the owner's management line (supervisor/director over the team), or admin/service."""
    if who is None or who.is_admin or who.is_service:
        return True
    if row.owner_user_id and row.owner_user_id == who.user_id:
        return True
    if who.has_role("supervisor", "director") and row.owner_user_id and row.team_path:
        return who.org_contains(row.team_path)
    return False


def lead_proto(row: LeadRow, who: Principal | None, *, full: bool = True) -> lead_pb2.Lead:
    lead = lead_pb2.Lead()
    parse(row.body or {}, lead)
    lead.lead_id = row.lead_id
    lead.display_name = row.display_name
    if lead.contact.phone and not can_see_phone(who, row):
        lead.contact.phone = mask_phone(lead.contact.phone)
        lead.contact.phone_masked = True
    lead.status = long(lead_pb2.LeadStatus, row.status)
    lead.owner_user_id = row.owner_user_id or ""
    lead.team_path = row.team_path
    lead.supervisor_user_id = row.supervisor_user_id
    lead.pool_id = row.pool_id or ""
    if row.pool_id:
        lead.pool_entry_reason = long(enums_pb2.PoolEntryReason, row.pool_entry_reason)
    if row.owner_user_id:
        lead.assignment_reason = long(enums_pb2.AssignmentReason, row.assignment_reason)
        if row.assign_time:
            lead.assign_time.CopyFrom(ts(row.assign_time))
    lead.last_decision_id = row.last_decision_id
    lead.grade = long(enums_pb2.LeadGrade, row.grade)
    lead.score = row.score
    if full and row.grading:
        parse(row.grading, lead.grading)
    if row.last_activity_time:
        lead.last_activity_time.CopyFrom(ts(row.last_activity_time))
    lead.activity_count = row.activity_count
    fr = lead.first_response
    fr.state = long(lead_pb2.FirstResponseState, row.sla_state)
    fr.policy_grade = long(enums_pb2.LeadGrade, row.sla_grade)
    for field, value in (
        ("clock_start_time", row.sla_start),
        ("due_time", row.sla_due),
        ("reminder_time", row.sla_reminder),
        ("response_time", row.sla_response_time),
        ("breach_time", row.sla_breach_time),
    ):
        if value is not None:
            getattr(fr, field).CopyFrom(ts(value))
    fr.response_activity_id = row.sla_response_activity_id
    fr.responder_user_id = row.sla_responder
    if row.sla_business_seconds is not None:
        fr.business_time_to_respond.FromTimedelta(timedelta(seconds=row.sla_business_seconds))
    fr.breach_action = long(enums_pb2.SlaBreachAction, row.sla_breach_action)
    fr.reassignment_count = row.sla_reassignments
    lead.needs_attention = row.needs_attention
    lead.duplicate_review_needed = row.duplicate_review_needed
    lead.intake_count = row.intake_count
    lead.merged_into_lead_id = row.merged_into
    lead.converted_opportunity_id = row.converted_opportunity_id
    if row.close_time:
        lead.close_time.CopyFrom(ts(row.close_time))
    lead.etag = str(row.version)
    lead.audit.created_by = row.created_by
    lead.audit.create_time.CopyFrom(ts(row.created_at))
    lead.audit.update_time.CopyFrom(ts(row.updated_at))
    return lead


def context(row: LeadRow) -> events_pb2.LeadContext:
    return events_pb2.LeadContext(
        lead_id=row.lead_id,
        display_name=row.display_name,
        grade=long(enums_pb2.LeadGrade, row.grade),
        status=long(lead_pb2.LeadStatus, row.status),
        owner_user_id=row.owner_user_id or "",
        team_path=row.team_path,
        supervisor_user_id=row.supervisor_user_id,
        pool_id=row.pool_id or "",
        region=row.region,
    )
