"""The events the leads service emits: one place for their names, subject and shared context."""

from __future__ import annotations

from google.protobuf.message import Message

from kit.resources import UnitOfWork
from salesops.leads.v1 import enums_pb2, events_pb2, lead_pb2
from services.leads.convert import enum_value
from services.leads.presenters import masked_display_name
from services.leads.store import LeadRow

SOURCE = "leads"
PREFIX = "leads."

# Events after which a lead's watch workflow must look at the lead again.
WATCHED = frozenset(
    PREFIX + n
    for n in (
        "LeadAssigned",
        "LeadReleased",
        "LeadRecycled",
        "ActivityLogged",
        "LeadGraded",
        "LeadConverted",
        "LeadDisqualified",
    )
)


async def publish(uow: UnitOfWork, payload: Message, lead_id: str) -> None:
    """Stage `payload` (a message of events.proto) into the outbox; its type name is the event name."""
    await uow.emit(PREFIX + payload.DESCRIPTOR.name, payload, subject=lead_id)


def context(row: LeadRow) -> events_pb2.LeadContext:
    """What every lead event carries about the lead: its presentation for events (no contact data,
    the phone masked where it names the lead)."""
    return events_pb2.LeadContext(
        lead_id=row.lead_id,
        display_name=masked_display_name(row),
        grade=enum_value(enums_pb2.LeadGrade, row.grade),
        status=enum_value(lead_pb2.LeadStatus, row.status),
        owner_user_id=row.owner_user_id or "",
        team_path=row.team_path,
        supervisor_user_id=row.supervisor_user_id,
        pool_id=row.pool_id or "",
        region=row.region,
    )
