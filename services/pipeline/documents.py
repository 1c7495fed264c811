"""A deal row as the Deal message and back: columns hold what is queried, `body` the rest.

`deal_of(row)` is the whole stored deal (columns win over the body); use cases
start from it and presenters cut it down per viewer. `store_editable(row, deal)`
writes the user-editable fields back (stage, probability and status change only
through their use cases).
"""

from __future__ import annotations

from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import deal_pb2, types_pb2
from services.pipeline.convert import aware, date_proto, enum_name, enum_value, to_date, ts
from services.pipeline.domain.stages import weighted
from services.pipeline.store import DealRow

CLOSED, OMITTED, COMMIT, BEST_CASE = "CLOSED", "OMITTED", "COMMIT", "BEST_CASE"


def effective_category(row: DealRow) -> str:
    if row.status == "WON":
        return CLOSED
    if row.status == "LOST":
        return OMITTED
    if row.frozen and row.forecast_category == COMMIT:
        return BEST_CASE  # a frozen commit is out of the locked commit
    return row.forecast_category


def deal_of(row: DealRow) -> deal_pb2.Deal:
    d = deal_pb2.Deal.FromString(row.body)
    d.deal_id = row.deal_id
    d.title = row.title
    d.customer.customer_id = row.customer_id
    d.customer.display_name = row.customer_name
    d.customer.industry = row.industry
    d.owner_user_id = row.owner_user_id
    d.org_path = row.org_path
    d.amount.CopyFrom(Money(amount_minor=row.amount_minor, currency=row.currency))
    d.stage_id = row.stage_id
    d.stage_model_version = row.stage_model_version
    d.probability_percent = row.probability
    d.stage_probability_percent = row.stage_probability
    d.weighted_amount.CopyFrom(Money(amount_minor=row.weighted_minor, currency=row.currency))
    d.expected_close_date.CopyFrom(date_proto(row.expected_close_date))
    d.forecast_category = enum_value(types_pb2.ForecastCategory, row.forecast_category)
    d.effective_forecast_category = enum_value(types_pb2.ForecastCategory, effective_category(row))
    d.status = enum_value(deal_pb2.DealStatus, row.status)
    d.source.origin = enum_value(deal_pb2.DealOrigin, row.origin)
    d.source.lead_id = row.lead_id or ""
    d.frozen = row.frozen
    d.last_confirm_time.CopyFrom(ts(row.last_confirm_at))
    d.dwell.stage_enter_time.CopyFrom(ts(row.stage_entered_at))
    d.audit.create_time.CopyFrom(ts(row.created_at))
    d.audit.update_time.CopyFrom(ts(row.updated_at))
    d.audit.created_by = row.created_by
    d.audit.updated_by = row.updated_by
    d.etag = str(row.version)
    return d


def body_of(deal: deal_pb2.Deal) -> bytes:
    body = deal_pb2.Deal()
    body.CopyFrom(deal)
    body.ClearField("etag")
    return body.SerializeToString(deterministic=True)


def store_editable(row: DealRow, deal: deal_pb2.Deal) -> None:
    """The editable columns from `deal` (already validated), and the body."""
    row.title = deal.title
    row.customer_id = deal.customer.customer_id
    row.customer_name = deal.customer.display_name
    row.industry = deal.customer.industry
    row.owner_user_id = deal.owner_user_id
    row.amount_minor = deal.amount.amount_minor
    row.currency = deal.amount.currency
    row.weighted_minor = weighted(row.amount_minor, row.probability)
    row.expected_close_date = to_date(deal.expected_close_date, "deal.expected_close_date")
    row.forecast_category = enum_name(types_pb2.ForecastCategory, deal.forecast_category)
    row.body = body_of(deal)


def tracked(row: DealRow) -> dict[str, str]:
    """The history's view of a deal (domain/history.py names and formats)."""
    return {
        "stage": row.stage_id,
        "status": row.status,
        "amount": f"{row.amount_minor} {row.currency}",
        "probability": str(row.probability),
        "forecast_category": row.forecast_category,
        "expected_close_date": row.expected_close_date.isoformat(),
        "owner": row.owner_user_id,
    }


def stage_entered(row: DealRow) -> str:
    return aware(row.stage_entered_at).isoformat()


__all__ = ["body_of", "deal_of", "effective_category", "store_editable", "tracked"]
