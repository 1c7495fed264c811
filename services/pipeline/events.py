"""Events of the pipeline service ("pipeline.<Message>", subject the deal id), staged in the outbox."""

from __future__ import annotations

from kit.resources import UnitOfWork
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import deal_pb2, events_pb2, types_pb2
from services.pipeline.convert import date_proto, enum_value
from services.pipeline.repositories.members import MemberProfiles
from services.pipeline.store import DealRow, MemberProfileRow

SOURCE = "pipeline"
DEAL_CREATED = "pipeline.DealCreated"
DEAL_UPDATED = "pipeline.DealUpdated"
DEAL_OWNER_CHANGED = "pipeline.DealOwnerChanged"
DEAL_STAGE_CHANGED = "pipeline.DealStageChanged"
DEAL_GATE_REJECTED = "pipeline.DealGateRejected"
DEAL_WON = "pipeline.DealWon"
DEAL_LOST = "pipeline.DealLost"
DEAL_REOPENED = "pipeline.DealReopened"
DEAL_UNFROZEN = "pipeline.DealUnfrozen"


async def deal_context(uow: UnitOfWork, row: DealRow) -> events_pb2.DealContext:
    """`context` with the owner's supervisor from the directory (who notify tells about the deal)."""
    return context_with(row, await MemberProfiles(uow).find(row.owner_user_id))


def context_with(row: DealRow, owner_profile: MemberProfileRow | None) -> events_pb2.DealContext:
    """`deal_context` from the owner's profile the caller has already read (None: not in the directory)."""
    ctx = context(row)
    if owner_profile is not None:
        ctx.supervisor_user_id = owner_profile.manager_user_id
    return ctx


def context(row: DealRow) -> events_pb2.DealContext:
    """The deal as it stood after the change (no personal data: users are ids)."""
    return events_pb2.DealContext(
        deal_id=row.deal_id,
        title=row.title,
        customer_id=row.customer_id,
        customer_name=row.customer_name,
        industry=row.industry,
        owner_user_id=row.owner_user_id,
        org_path=row.org_path,
        stage_id=row.stage_id,
        status=enum_value(deal_pb2.DealStatus, row.status),
        amount=Money(amount_minor=row.amount_minor, currency=row.currency),
        probability_percent=row.probability,
        expected_close_date=date_proto(row.expected_close_date),
        forecast_category=enum_value(types_pb2.ForecastCategory, row.forecast_category),
        lead_id=row.lead_id or "",
    )
