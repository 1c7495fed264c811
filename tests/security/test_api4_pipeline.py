"""API4 in pipeline: bounded input. Amounts, text and collections past their limits are
INVALID_ARGUMENT on the field (never a database error or an overflowing sum: INTERNAL)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from salesops.common.v1.types_pb2 import AttachmentRef, Money
from salesops.pipeline.v1 import deal_pb2, settings_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import stage_model_pb2 as sm
from services.pipeline.deals import MAX_AMOUNT_MINOR
from tests.pipeline.conftest import Pipeline, pipeline
from tests.pipeline.helpers import bad_fields, create, in_days, mask, new_deal, refused

__all__ = ["pipeline"]

INT64_MAX = 2**63 - 1
EVIDENCE_TYPE = "meeting_minutes"


async def test_amounts_are_capped_so_forecast_sums_never_overflow(pipeline: Pipeline) -> None:
    status = await refused(
        pipeline.call("CreateDeal", pb.CreateDealRequest(deal=new_deal("huge", amount=INT64_MAX))),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert bad_fields(status) == ["deal.amount"]
    for n in range(3):
        await create(pipeline, new_deal(f"cap{n}", amount=MAX_AMOUNT_MINOR), user="rep-a1")
    grow = pb.UpdateDealRequest(
        deal=new_deal("cap0", amount=MAX_AMOUNT_MINOR + 1), update_mask=mask("amount")
    )
    status = await refused(pipeline.call("UpdateDeal", grow, user="rep-a1"), grpc.StatusCode.INVALID_ARGUMENT)
    assert bad_fields(status) == ["deal.amount"]

    req = pb.GetForecastRequest()
    req.period.granularity = types_pb2.PERIOD_GRANULARITY_YEAR
    req.period.start_date.CopyFrom(in_days(30))
    forecast = (await pipeline.call("GetForecast", req, user="rep-a1")).forecast
    assert forecast.totals.categories[0].amount.amount_minor == 3 * MAX_AMOUNT_MINOR


@pytest.mark.parametrize(
    ("path", "edit"),
    [
        ("deal.deal_id", lambda d: setattr(d, "deal_id", "x" * 65)),
        ("deal.title", lambda d: setattr(d, "title", "t" * 301)),
        ("deal.owner_user_id", lambda d: setattr(d, "owner_user_id", "u" * 65)),
        ("deal.customer.display_name", lambda d: setattr(d.customer, "display_name", "c" * 301)),
        ("deal.customer.customer_id", lambda d: setattr(d.customer, "customer_id", "c" * 65)),
        ("deal.customer.industry", lambda d: setattr(d.customer, "industry", "i" * 65)),
        ("deal.next_step", lambda d: setattr(d, "next_step", "n" * 2001)),
        ("deal.custom_fields", lambda d: d.custom_fields.update({"k": "v" * 100_000})),
        ("deal.custom_fields", lambda d: d.custom_fields.update({f"k{i}": "v" for i in range(51)})),
        ("deal.competitors", lambda d: d.competitors.extend(["c"] * 21)),
        ("deal.line_items", lambda d: [d.line_items.add(line_id=str(i)) for i in range(201)]),
    ],
)
async def test_deal_text_and_collections_are_bounded(pipeline: Pipeline, path: str, edit: Any) -> None:
    deal = new_deal("long")
    edit(deal)
    status = await refused(
        pipeline.call("CreateDeal", pb.CreateDealRequest(deal=deal), user="admin"),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert path in bad_fields(status)


async def test_update_is_bounded_like_create(pipeline: Pipeline) -> None:
    await create(pipeline, new_deal("d1"), user="rep-a1")
    edit = new_deal("d1")
    edit.custom_fields["notes"] = "v" * 100_000
    status = await refused(
        pipeline.call(
            "UpdateDeal", pb.UpdateDealRequest(deal=edit, update_mask=mask("custom_fields")), user="rep-a1"
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert bad_fields(status) == ["deal.custom_fields"]


async def test_member_profiles_snapshots_and_losses_are_bounded(pipeline: Pipeline) -> None:
    profile = settings_pb2.MemberProfile(user_id="rep-x", display_name="d" * 201, org_path="east/team-a")
    status = await refused(
        pipeline.call(
            "UpdateMemberProfile",
            pb.UpdateMemberProfileRequest(member_profile=profile, allow_missing=True),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert bad_fields(status) == ["member_profile.display_name"]

    take = pb.TakeForecastSnapshotRequest(request_id="r" * 65)
    take.period.granularity = types_pb2.PERIOD_GRANULARITY_MONTH
    take.period.start_date.CopyFrom(in_days(1))
    status = await refused(pipeline.call("TakeForecastSnapshot", take), grpc.StatusCode.INVALID_ARGUMENT)
    assert bad_fields(status) == ["request_id"]

    await create(pipeline, new_deal("d2"), user="rep-a1")
    for req, field in (
        (pb.MarkLostRequest(deal_id="d2", category=sm.LostReasonCategory.ValueType(999)), "category"),
        (
            pb.MarkLostRequest(deal_id="d2", category=sm.LOST_REASON_CATEGORY_PRICE, detail="x" * 2001),
            "detail",
        ),
        (
            pb.MarkLostRequest(deal_id="d2", category=sm.LOST_REASON_CATEGORY_PRICE, competitor="x" * 201),
            "competitor",
        ),
    ):
        status = await refused(
            pipeline.call("MarkLost", req, user="rep-a1"), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert bad_fields(status) == [field]


async def test_repeated_filters_are_bounded(pipeline: Pipeline) -> None:
    """40,000 owner ids were 40,000 bound parameters: INTERNAL on PostgreSQL (its limit is 32,767)."""
    many = [f"user-{i}" for i in range(40_000)]
    lost = pb.SummarizeLostReasonsRequest()
    lost.scope.user_ids.extend(many)
    forecast = pb.GetForecastRequest()
    forecast.period.granularity = types_pb2.PERIOD_GRANULARITY_YEAR
    forecast.period.start_date.CopyFrom(in_days(1))
    forecast.scope.user_ids.extend(many)
    for method, request, field in (
        (
            "ListDeals",
            pb.ListDealsRequest(filter=pb.DealFilter(owner_user_ids=many)),
            "filter.owner_user_ids",
        ),
        ("ListDeals", pb.ListDealsRequest(filter=pb.DealFilter(stage_ids=many)), "filter.stage_ids"),
        ("SummarizeLostReasons", lost, "scope.user_ids"),
        ("GetForecast", forecast, "scope.user_ids"),
    ):
        status = await refused(pipeline.call(method, request, user="admin"), grpc.StatusCode.INVALID_ARGUMENT)
        assert bad_fields(status) == [field]
    fine = pb.ListDealsRequest(filter=pb.DealFilter(owner_user_ids=many[:500]))
    assert list((await pipeline.call("ListDeals", fine, user="admin")).deals) == []


async def test_notes_evidence_and_the_weekly_update_are_bounded(pipeline: Pipeline) -> None:
    """ConfirmDeal took an int64-max amount past CreateDeal's cap; notes grew the deal's body without end;
    a 65-character evidence id was INTERNAL on PostgreSQL."""
    await create(pipeline, new_deal("d3"), user="rep-a1")
    huge = pb.ConfirmDealRequest(deal_id="d3", amount=Money(amount_minor=INT64_MAX, currency="CNY"))
    for method, request, field in (
        ("ConfirmDeal", huge, "amount"),
        ("ConfirmDeal", pb.ConfirmDealRequest(deal_id="d3", next_step="n" * 2001), "next_step"),
        (
            "MoveStage",
            pb.MoveStageRequest(deal_id="d3", to_stage_id="needs_confirmed", note="n" * 2001),
            "note",
        ),
        (
            "SetDealChecklistItem",
            pb.SetDealChecklistItemRequest(deal_id="d3", item_id="requirements_reviewed", note="n" * 2001),
            "note",
        ),
        (
            "CreateDealEvidence",
            pb.CreateDealEvidenceRequest(
                deal_id="d3",
                evidence=deal_pb2.DealEvidence(
                    evidence_id="e" * 65,
                    evidence_type_id=EVIDENCE_TYPE,
                    attachment=AttachmentRef(uri="files/1"),
                ),
            ),
            "evidence.evidence_id",
        ),
        (
            "CreateDealEvidence",
            pb.CreateDealEvidenceRequest(
                deal_id="d3",
                evidence=deal_pb2.DealEvidence(
                    evidence_type_id=EVIDENCE_TYPE,
                    title="t" * 20_000,
                    attachment=AttachmentRef(uri="files/1"),
                ),
            ),
            "evidence",
        ),
    ):
        status = await refused(
            pipeline.call(method, request, user="rep-a1"), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert bad_fields(status) == [field], method


async def test_far_dates_and_times_are_invalid_not_internal(pipeline: Pipeline) -> None:
    """A week of 9999-12-31, 90 days before 0001-01-01 or a timestamp past 9999 overflowed: INTERNAL."""
    week = pb.GetForecastRequest()
    week.period.granularity = types_pb2.PERIOD_GRANULARITY_WEEK
    week.period.start_date.year, week.period.start_date.month, week.period.start_date.day = 9999, 12, 31
    snaps = pb.ListForecastSnapshotsRequest(period=week.period)
    early = pb.SummarizeLostReasonsRequest()
    early.lost_to.year, early.lost_to.month, early.lost_to.day = 1, 1, 1
    changes = pb.ListDealChangesRequest(deal_id="x")
    changes.change_time_before.seconds = 253402300799 + 100
    deals = pb.ListDealsRequest()
    deals.filter.update_time_after.seconds = -62135596800 - 100
    far_close = new_deal("far")
    far_close.expected_close_date.year = 9999
    for method, request, field in (
        ("GetForecast", week, "period.start_date"),
        ("ListForecastSnapshots", snaps, "period.start_date"),
        ("SummarizeLostReasons", early, "lost_to"),
        ("ListDealChanges", changes, "change_time_before"),
        ("ListDeals", deals, "filter.update_time_after"),
        ("CreateDeal", pb.CreateDealRequest(deal=far_close), "deal.expected_close_date"),
    ):
        status = await refused(
            pipeline.call(method, request, user="rep-a1"), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert bad_fields(status) == [field], method
