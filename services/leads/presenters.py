"""What a viewer may see of a lead and of an activity: the one presentation step of each, used on every
response path (get, list, create, idempotent replay, dedupe merge, batch, the manager views)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kit.auth import Principal
from kit.memo import BytesMemo
from salesops.leads.v1 import activity_pb2, enums_pb2, lead_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads import access
from services.leads.convert import enum_value, put_time
from services.leads.domain.normalize import mask_phone
from services.leads.proto_dict import parse_into
from services.leads.repositories.lead_reads import LeadView, OtherLead
from services.leads.repositories.sqlite_driven import Answer
from services.leads.store import ActivityRow, LeadRow


@dataclass
class LeadDetails:
    """A lead row (or a read's view of one) with what the FULL view adds (gathered by lead_views.details)."""

    row: LeadRow | LeadView
    full: bool = False
    duplicate_candidates: list[lead_pb2.DuplicateCandidate] = field(default_factory=list)
    recent_intakes: list[lead_pb2.IntakeRecord] = field(default_factory=list)
    recycle_time: datetime | None = None
    recycle_warn_time: datetime | None = None
    caller_can_claim: bool = False
    with_recycle: bool = False


class LeadPresenter:
    """Masks phones (in the contact, the display name and merged intake records) for those who may not
    see them; the full view adds grading details, duplicates, intakes, the recycle schedule."""

    def present(self, viewer: Principal, item: LeadDetails | LeadRow | LeadView) -> lead_pb2.Lead:
        lead = lead_pb2.Lead()
        self.present_into(lead, viewer, item)
        return lead

    def present_into(
        self,
        lead: lead_pb2.Lead,
        viewer: Principal,
        item: LeadDetails | LeadRow | LeadView,
        *,
        stored: tuple[lead_pb2.Lead, lead_pb2.GradingResult] | None = None,
    ) -> None:
        """`present`, into an empty message already in its answer (`leads.add()`, `response.lead`):
        a message built apart is copied whole when put into its answer. `stored`: the body and
        grading messages the row was written from in this unit of work (a lead just created),
        copied instead of parsing the JSON just written (the parser was ~15 % of a grouped
        CreateLead's CPU)."""
        details = item if isinstance(item, LeadDetails) else LeadDetails(item)
        row = details.row
        if stored is None and type(row) is LeadView and type(row.body) is str:
            masked = _row_into(lead, viewer, row)
            if details.full and row.grading:
                parse_into(row.grading, lead.grading)
        else:
            if stored is not None:
                lead.CopyFrom(stored[0])
            elif row.body:  # ParseDict's result (its parser was the largest per-lead cost of a list)
                put_body(row.body, lead)
            masked = _own_part(lead, viewer, row)
            _state(lead, row, full=details.full and stored is None)
            if details.full and stored is not None:
                lead.grading.CopyFrom(stored[1])
        if details.full:
            lead.duplicate_candidates.extend(details.duplicate_candidates)
            for rec in details.recent_intakes:
                if rec.contact.phone and masked:
                    rec.contact.phone = mask_phone(rec.contact.phone)
                    rec.contact.phone_masked = True
                lead.recent_intakes.append(rec)
        if details.with_recycle:
            lead.recycle.exempt = details.recycle_time is None
            if details.recycle_time:
                lead.recycle.recycle_time.FromDatetime(details.recycle_time)
            if details.recycle_warn_time:
                lead.recycle.warn_time.FromDatetime(details.recycle_warn_time)
            lead.caller_can_claim = details.caller_can_claim

    def present_page(
        self,
        page: pb.ListLeadsResponse,
        viewer: Principal,
        rows: list[LeadView],
        *,
        full: bool,
        answer: Answer | None,
    ) -> None:
        """Each of `rows` presented into `page.leads` (an empty answer, as `present_into` each),
        one C merge when the same page was presented before with the same phones masked.

        `answer`: what names the read that found `rows` (sqlite_driven.Answer: its SQL, values and
        the database's version; None: not named, presented row by row). The same name is the same
        rows, and the SQL's values hold the viewer's scope, so an entry is only met by a read that
        found exactly these rows; what this viewer may see of each (`access.can_see_phone`, the one
        masking rule) is part of the key, decided for them on every call."""
        if answer is None:
            for row in rows:
                self.present_into(page.leads.add(), viewer, LeadDetails(row, full=full))
            return
        key = (answer, full, tuple([access.can_see_phone(viewer, row) for row in rows]))
        found = _PAGES.get(key)
        if found is not None:
            page.MergeFromString(found)
            return
        for row in rows:
            self.present_into(page.leads.add(), viewer, LeadDetails(row, full=full))
        serialized = page.SerializeToString()
        args = answer[1]
        size = len(serialized) + sys.getsizeof(args) + sum(map(sys.getsizeof, args)) + PAGE_BYTES
        _PAGES.put(key, serialized, size)


# A page of leads presented (ListLeads' `leads`, serialized), by the read's name, the view and the
# masking decided for its viewer per lead: a page asked again is one merge instead of one per lead
# (~1 us each, with its row's hash for `_PRESENTED`) and a LeadDetails each. Bounded in bytes: the
# answer, the key's values (its SQL is the Driven's own string) and PAGE_BYTES for the rest of
# the key (tuples, the version, the flags).
_PAGES: BytesMemo[tuple[Answer, bool, tuple[bool, ...]], bytes] = BytesMemo(8 << 20)
PAGE_BYTES = 512


# A lead's stored body, as its JSON text (lead_reads on SQLite) -> the body parsed, serialized. The
# same text always parses to the same message, so an entry cannot go stale; a lead read again (a
# list's page asked again, a lead opened) is one C merge instead of json.loads and parse_into (the
# two were most of presenting a ListLeads page). Bounded in bytes (kit.memo).
_BODIES: BytesMemo[str, bytes] = BytesMemo(4 << 20)


def put_body(body: dict[str, Any] | str, lead: lead_pb2.Lead) -> None:
    """`body` (the stored dict, or its JSON text) parsed into `lead`, an empty message."""
    if type(body) is not str:
        parse_into(body, lead)
        return
    found = _BODIES.get(body)
    if found is not None:
        lead.MergeFromString(found)
        return
    value = json.loads(body)
    if value:  # a JSON null (or empty) body shows nothing, as its dict did
        parse_into(value, lead)
    serialized = lead.SerializeToString()
    _BODIES.put(body, serialized, len(body) + len(serialized))


def _own_part(lead: lead_pb2.Lead, viewer: Principal, row: LeadRow | LeadView) -> bool:
    """The lead's id and name, its phone masked if `viewer` may not see it; whether it was."""
    lead.lead_id = row.lead_id
    lead.display_name = row.display_name
    masked = bool(lead.contact.phone) and not access.can_see_phone(viewer, row)
    if masked:
        lead.contact.phone = mask_phone(lead.contact.phone)
        lead.contact.phone_masked = True
        lead.display_name = masked_display_name(row)
    return masked


# What a read's row (lead_reads' LeadView, body as its JSON text) presents, but the FULL view's
# grading, serialized: by the whole row and whether the viewer sees its phone. The answer is a
# function of exactly these (the row holds every column the presenter reads), so an entry cannot
# go stale (a changed lead is another row) and a viewer only meets the masking decided for them;
# who may see the lead at all was decided by the read's statement. A lead presented again (a page
# asked again, a lead opened again) is one C merge instead of ~40 field sets. Bounded in bytes:
# the row's body text, the answer, and the row's other columns at ROW_BYTES.
_PRESENTED: BytesMemo[tuple[LeadView, bool], tuple[bytes, bool]] = BytesMemo(8 << 20)
ROW_BYTES = 1024


def _row_into(lead: lead_pb2.Lead, viewer: Principal, row: LeadView) -> bool:
    """Body, id, name and columns of `row` into `lead` (empty) as `viewer` sees them (the FULL
    view's grading left out: a dict, unhashable); whether the phone was masked."""
    key = (row if row.grading is None else row._replace(grading=None), access.can_see_phone(viewer, row))
    found = _PRESENTED.get(key)
    if found is not None:
        lead.MergeFromString(found[0])
        return found[1]
    if row.body:
        put_body(row.body, lead)
    masked = _own_part(lead, viewer, row)
    _state(lead, row, full=False)
    serialized = lead.SerializeToString()
    size = len(row.body or "") + len(serialized) + ROW_BYTES
    _PRESENTED.put(key, (serialized, masked), size)
    return masked


def masked_display_name(row: LeadRow | LeadView | OtherLead) -> str:
    """The display name with the lead's phone masked (a lead known only by its number is named by it).

    Also what events carry: their readers (other services, the people they notify) are not
    necessarily the owner's line."""
    if row.phone and row.phone in row.display_name:
        return row.display_name.replace(row.phone, mask_phone(row.phone))
    return row.display_name


def _state(lead: lead_pb2.Lead, row: LeadRow | LeadView, *, full: bool) -> None:
    """The server-made part of a lead, from its columns. Into an empty message: a field whose value
    is its default is left unset (the same message; each set is a call into protobuf, and most
    leads leave half of these empty)."""
    lead.status = enum_value(lead_pb2.LeadStatus, row.status)
    if row.owner_user_id:
        lead.owner_user_id = row.owner_user_id
        lead.assignment_reason = enum_value(enums_pb2.AssignmentReason, row.assignment_reason)
        if row.assign_time:
            put_time(lead.assign_time, row.assign_time)
    if row.team_path:
        lead.team_path = row.team_path
    if row.supervisor_user_id:
        lead.supervisor_user_id = row.supervisor_user_id
    if row.pool_id:
        lead.pool_id = row.pool_id
        lead.pool_entry_reason = enum_value(enums_pb2.PoolEntryReason, row.pool_entry_reason)
    if row.last_decision_id:
        lead.last_decision_id = row.last_decision_id
    if row.grade:
        lead.grade = enum_value(enums_pb2.LeadGrade, row.grade)
    if row.score:
        lead.score = row.score
    if full and row.grading:
        parse_into(row.grading, lead.grading)
    if row.last_activity_time:
        put_time(lead.last_activity_time, row.last_activity_time)
    if row.activity_count:
        lead.activity_count = row.activity_count
    fr = lead.first_response
    fr.state = enum_value(lead_pb2.FirstResponseState, row.sla_state)
    if row.sla_grade:
        fr.policy_grade = enum_value(enums_pb2.LeadGrade, row.sla_grade)
    for name, value in (
        ("clock_start_time", row.sla_start),
        ("due_time", row.sla_due),
        ("reminder_time", row.sla_reminder),
        ("response_time", row.sla_response_time),
        ("breach_time", row.sla_breach_time),
    ):
        if value is not None:
            put_time(getattr(fr, name), value)
    if row.sla_response_activity_id:
        fr.response_activity_id = row.sla_response_activity_id
    if row.sla_responder:
        fr.responder_user_id = row.sla_responder
    if row.sla_business_seconds is not None:
        fr.business_time_to_respond.FromTimedelta(timedelta(seconds=row.sla_business_seconds))
    if row.sla_breach_action:
        fr.breach_action = enum_value(enums_pb2.SlaBreachAction, row.sla_breach_action)
    if row.sla_reassignments:
        fr.reassignment_count = row.sla_reassignments
    if row.needs_attention:
        lead.needs_attention = True
    if row.duplicate_review_needed:
        lead.duplicate_review_needed = True
    if row.intake_count:
        lead.intake_count = row.intake_count
    if row.merged_into:
        lead.merged_into_lead_id = row.merged_into
    if row.converted_opportunity_id:
        lead.converted_opportunity_id = row.converted_opportunity_id
    if row.close_time:
        put_time(lead.close_time, row.close_time)
    lead.etag = str(row.version)
    audit = lead.audit
    audit.created_by = row.created_by
    put_time(audit.create_time, row.created_at)
    put_time(audit.update_time, row.updated_at)


class ActivityPresenter:
    """Activities are seen by whoever may see their lead (checked by the caller); this maps the row."""

    def present(self, viewer: Principal, item: ActivityRow) -> activity_pb2.Activity:
        msg = activity_pb2.Activity()
        parse_into(item.body or {}, msg)
        msg.activity_id, msg.lead_id, msg.actor_user_id = item.activity_id, item.lead_id, item.actor_user_id
        msg.first_response = item.first_response
        msg.etag = str(item.version)
        put_time(msg.audit.create_time, item.created_at)
        msg.audit.created_by = item.actor_user_id
        return msg


LEADS = LeadPresenter()
ACTIVITIES = ActivityPresenter()
