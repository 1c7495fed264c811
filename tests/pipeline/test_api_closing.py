"""Closing deals: MarkWon through the won gate, MarkLost with structured reasons, ReopenDeal, ConfirmDeal."""

from __future__ import annotations

import grpc

from salesops.common.v1.types_pb2 import AttachmentRef, Money
from salesops.pipeline.v1 import deal_pb2, stage_model_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import create, error_info, in_days, new_deal, precondition, refused

OTHER = stage_model_pb2.LOST_REASON_CATEGORY_OTHER
PRICE = stage_model_pb2.LOST_REASON_CATEGORY_PRICE


async def test_mark_won_is_gated_recorded_and_closes_the_deal(pipeline: Pipeline) -> None:
    deal = await create(pipeline, new_deal("W1", amount=1_000_000))
    status = await refused(pipeline.call("MarkWon", pb.MarkWonRequest(deal_id="W1"), user="rep-a1"))
    assert precondition(status) == [("GATE_EVIDENCE", "won/signed_contract")]
    assert error_info(status).reason == "GATE_REJECTED"
    ev = deal_pb2.DealEvidence(
        evidence_id="sc", evidence_type_id="signed_contract", attachment=AttachmentRef(uri="s3://c")
    )
    await pipeline.call(
        "CreateDealEvidence", pb.CreateDealEvidenceRequest(deal_id="W1", evidence=ev), user="rep-a1"
    )
    await refused(
        pipeline.call("MarkWon", pb.MarkWonRequest(deal_id="W1", etag=deal.etag), user="rep-a1"),
        grpc.StatusCode.ABORTED,
    )
    won = await pipeline.call(
        "MarkWon",
        pb.MarkWonRequest(
            deal_id="W1", won_amount=Money(amount_minor=950_000, currency="CNY"), contract_number="C-1"
        ),
        user="rep-a1",
    )
    d = won.deal
    assert (d.status, d.probability_percent, d.effective_forecast_category) == (
        deal_pb2.DEAL_STATUS_WON,
        100,
        types_pb2.FORECAST_CATEGORY_CLOSED,
    )
    assert (d.won.won_amount.amount_minor, d.won.contract_number, d.won.won_by) == (950_000, "C-1", "rep-a1")
    assert d.amount.amount_minor == 950_000 and d.weighted_amount.amount_minor == 950_000
    assert won.gate_review.to_won and won.gate_review.outcome == deal_pb2.GATE_OUTCOME_PASSED
    reviews = (
        await pipeline.call("ListGateReviews", pb.ListGateReviewsRequest(deal_id="W1"), user="rep-a1")
    ).gate_reviews
    assert [r.outcome for r in reviews] == [deal_pb2.GATE_OUTCOME_PASSED, deal_pb2.GATE_OUTCOME_REJECTED]
    # A closed deal no longer moves, gathers evidence or wins twice.
    for method, req in (
        ("MoveStage", pb.MoveStageRequest(deal_id="W1", to_stage_id="needs_confirmed")),
        ("MarkWon", pb.MarkWonRequest(deal_id="W1")),
        ("MarkLost", pb.MarkLostRequest(deal_id="W1", category=PRICE)),
    ):
        await refused(pipeline.call(method, req, user="rep-a1"))
    changes = (
        await pipeline.call(
            "ListDealChanges",
            pb.ListDealChangesRequest(deal_id="W1", fields=["status", "amount"]),
            user="rep-a1",
        )
    ).changes
    assert [(c.field, c.old_value, c.new_value) for c in changes][2:] == [
        ("amount", "1000000 CNY", "950000 CNY"),
        ("status", "OPEN", "WON"),
    ]


async def test_mark_lost_needs_a_structured_reason_and_reopen_brings_it_back(pipeline: Pipeline) -> None:
    await create(pipeline, new_deal("X1"))
    await refused(
        pipeline.call("MarkLost", pb.MarkLostRequest(deal_id="X1"), user="rep-a1"),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await refused(
        pipeline.call("MarkLost", pb.MarkLostRequest(deal_id="X1", category=OTHER), user="rep-a1"),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await refused(
        pipeline.call(
            "MarkLost", pb.MarkLostRequest(deal_id="X1", category=PRICE, reason_code="nope"), user="rep-a1"
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    lost = (
        await pipeline.call(
            "MarkLost", pb.MarkLostRequest(deal_id="X1", category=PRICE, competitor="Rival"), user="rep-a1"
        )
    ).deal
    assert (
        lost.status,
        lost.probability_percent,
        lost.effective_forecast_category,
        lost.weighted_amount.amount_minor,
    ) == (
        deal_pb2.DEAL_STATUS_LOST,
        0,
        types_pb2.FORECAST_CATEGORY_OMITTED,
        0,
    )
    assert (lost.lost.category, lost.lost.competitor, lost.lost.lost_at_stage_id) == (
        PRICE,
        "Rival",
        "initial_contact",
    )

    await refused(
        pipeline.call(
            "ReopenDeal", pb.ReopenDealRequest(deal_id="X1", expected_close_date=in_days(20)), user="rep-a1"
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    later = pb.ReopenDealRequest(
        deal_id="X1", expected_close_date=in_days(20), note="new budget", stage_id="needs_confirmed"
    )
    await refused(pipeline.call("ReopenDeal", later, user="rep-a1"), grpc.StatusCode.INVALID_ARGUMENT)
    back = await pipeline.call(
        "ReopenDeal",
        pb.ReopenDealRequest(deal_id="X1", expected_close_date=in_days(20), note="new budget"),
        user="rep-a1",
    )
    d = back.deal
    assert (d.status, d.stage_id, d.probability_percent, d.HasField("lost")) == (
        deal_pb2.DEAL_STATUS_OPEN,
        "initial_contact",
        10,
        False,
    )
    assert d.stage_history[-1].note == "new budget"
    await refused(
        pipeline.call(
            "ReopenDeal",
            pb.ReopenDealRequest(deal_id="X1", expected_close_date=in_days(20), note="x"),
            user="rep-a1",
        )
    )


async def test_confirm_deal_is_the_weekly_update(pipeline: Pipeline) -> None:
    deal = await create(pipeline, new_deal("F1"))
    req = pb.ConfirmDealRequest(
        deal_id="F1",
        expected_close_date=in_days(40),
        amount=Money(amount_minor=3_000, currency="CNY"),
        forecast_category=types_pb2.FORECAST_CATEGORY_COMMIT,
        next_step="sign",
        etag=deal.etag,
    )
    got = (await pipeline.call("ConfirmDeal", req, user="rep-a1")).deal
    assert (got.amount.amount_minor, got.forecast_category, got.next_step) == (
        3_000,
        types_pb2.FORECAST_CATEGORY_COMMIT,
        "sign",
    )
    assert got.last_confirm_time.ToDatetime() > deal.last_confirm_time.ToDatetime()
    for bad in (
        pb.ConfirmDealRequest(deal_id="F1", forecast_category=types_pb2.FORECAST_CATEGORY_CLOSED),
        pb.ConfirmDealRequest(deal_id="F1", expected_close_date=in_days(-5)),
        pb.ConfirmDealRequest(deal_id="F1", amount=Money(amount_minor=1, currency="USD")),
    ):
        await refused(pipeline.call("ConfirmDeal", bad, user="rep-a1"), grpc.StatusCode.INVALID_ARGUMENT)
    await refused(
        pipeline.call("ConfirmDeal", pb.ConfirmDealRequest(deal_id="F1"), user="rep-b1"),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_summarize_lost_reasons_counts_why_we_lose_in_the_callers_scope(pipeline: Pipeline) -> None:
    model = (await pipeline.call("GetStageModel", pb.GetStageModelRequest())).stage_model
    model.lost_reason_codes.add(code="price_vs_rival", display_name="Rival cheaper", category=PRICE)
    await pipeline.call("UpdateStageModel", pb.UpdateStageModelRequest(stage_model=model))
    lost = [
        ("L1", "rep-a1", 100, PRICE, "price_vs_rival", "Rival"),
        ("L2", "rep-a1", 200, PRICE, "", "Rival"),
        ("L3", "rep-a2", 300, stage_model_pb2.LOST_REASON_CATEGORY_NO_BUDGET, "", ""),
        ("L4", "rep-b1", 400, PRICE, "", "Other Co"),
    ]
    for deal_id, owner, amount, category, code, competitor in lost:
        await create(pipeline, new_deal(deal_id, amount=amount), user=owner)
        req = pb.MarkLostRequest(deal_id=deal_id, category=category, reason_code=code, competitor=competitor)
        await pipeline.call("MarkLost", req, user=owner)
    await create(pipeline, new_deal("L5", amount=999), user="rep-a1")  # open: not counted

    def view(resp: pb.SummarizeLostReasonsResponse) -> list[tuple[str, str, int, float, int]]:
        return [
            (
                stage_model_pb2.LostReasonCategory.Name(r.category).removeprefix("LOST_REASON_CATEGORY_"),
                r.reason_code,
                r.count,
                round(r.share, 3),
                r.amount.amount_minor,
            )
            for r in resp.reasons
        ]

    everyone = await pipeline.call("SummarizeLostReasons", pb.SummarizeLostReasonsRequest(), user="admin")
    assert (everyone.lost_deal_count, everyone.lost_amount.amount_minor) == (4, 1000)
    assert view(everyone) == [
        ("PRICE", "", 3, 0.75, 700),
        ("NO_BUDGET", "", 1, 0.25, 300),
        ("PRICE", "price_vs_rival", 1, 0.25, 100),
    ]
    assert [(c.competitor, c.count, c.amount.amount_minor) for c in everyone.competitors] == [
        ("Rival", 2, 300),
        ("Other Co", 1, 400),
    ]
    team_a = await pipeline.call("SummarizeLostReasons", pb.SummarizeLostReasonsRequest(), user="sup-a")
    assert team_a.lost_deal_count == 3 and [c.competitor for c in team_a.competitors] == ["Rival"]
    mine = await pipeline.call("SummarizeLostReasons", pb.SummarizeLostReasonsRequest(), user="rep-a2")
    assert view(mine) == [("NO_BUDGET", "", 1, 1.0, 300)]
    before = pb.SummarizeLostReasonsRequest(lost_from=in_days(-30), lost_to=in_days(-1))
    assert (await pipeline.call("SummarizeLostReasons", before, user="admin")).lost_deal_count == 0
    at_stage = pb.SummarizeLostReasonsRequest(stage_ids=["needs_confirmed"])
    assert (await pipeline.call("SummarizeLostReasons", at_stage, user="admin")).lost_deal_count == 0
    # Reopening takes a deal out of the count.
    await pipeline.call(
        "ReopenDeal",
        pb.ReopenDealRequest(deal_id="L2", expected_close_date=in_days(9), note="back"),
        user="rep-a1",
    )
    assert (
        await pipeline.call("SummarizeLostReasons", pb.SummarizeLostReasonsRequest(), user="admin")
    ).lost_deal_count == 3
