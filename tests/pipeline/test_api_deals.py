"""Deals over real gRPC on a real database: create, gated moves, dry runs, history, scope, etags."""

from __future__ import annotations

import asyncio

import grpc
from sqlalchemy import select

from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import deal_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline.store import outbox
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import (
    bad_fields,
    create,
    error_info,
    field_gated_model,
    in_days,
    mask,
    new_deal,
    precondition,
    refused,
    use_model,
)

MOT = [
    ("GATE_REQUIRED_FIELD", "proposal_quote/qualification.budget_min"),
    ("GATE_REQUIRED_FIELD", "proposal_quote/qualification.budget_max"),
    ("GATE_REQUIRED_FIELD", "proposal_quote/qualification.decision_date"),
    ("GATE_REQUIRED_FIELD", "proposal_quote/qualification.decision_maker_access"),
]


async def test_a_deal_walks_through_its_gates_and_every_refusal_is_recorded(pipeline: Pipeline) -> None:
    await use_model(pipeline, field_gated_model())
    deal = await create(pipeline, new_deal("D1"))
    assert (deal.stage_id, deal.probability_percent, deal.owner_user_id, deal.org_path) == (
        "initial_contact",
        10,
        "rep-a1",
        "east/team-a",
    )
    assert deal.weighted_amount.amount_minor == 100_000
    assert deal.status == deal_pb2.DEAL_STATUS_OPEN and deal.etag == "1"

    # Skipping stages runs every gate on the way: all missing items at once, and the refusal is on record.
    status = await refused(
        pipeline.call(
            "MoveStage", pb.MoveStageRequest(deal_id="D1", to_stage_id="proposal_quote"), user="rep-a1"
        )
    )
    assert precondition(status) == [
        ("GATE_REQUIRED_FIELD", "needs_confirmed/next_step"),
        ("GATE_CHECKLIST", "solution_confirmed/requirements_reviewed"),
        ("GATE_REQUIRED_FIELD", "solution_confirmed/custom_fields.req_doc"),
        *MOT,
    ]
    info = error_info(status)
    assert info.reason == "GATE_REJECTED" and info.metadata["review_id"]

    # The dry run answers the same items, with their branches, and records nothing.
    dry = (
        await pipeline.call(
            "CheckGate", pb.CheckGateRequest(deal_id="D1", to_stage_id="proposal_quote"), user="rep-a1"
        )
    ).gate_review
    assert dry.outcome == deal_pb2.GATE_OUTCOME_REJECTED and not dry.review_id
    assert [(i.stage_id + "/" + i.key, i.branch) for i in dry.items if not i.satisfied][:3] == [
        ("needs_confirmed/next_step", "required_fields[0]"),
        ("solution_confirmed/requirements_reviewed", "rule.any_of[0]"),
        ("solution_confirmed/custom_fields.req_doc", "rule.any_of[1]"),
    ]
    nxt = (await pipeline.call("CheckGate", pb.CheckGateRequest(deal_id="D1"), user="rep-a1")).gate_review
    assert nxt.to_stage_id == "needs_confirmed" and [i.detail for i in nxt.items] == ["set next_step"]

    # Fill what is missing, step by step; each move passes through the same engine.
    upd = deal_pb2.Deal(deal_id="D1", next_step="demo", custom_fields={"req_doc": "RD-7"}, etag="1")
    deal = (
        await pipeline.call(
            "UpdateDeal",
            pb.UpdateDealRequest(deal=upd, update_mask=mask("next_step", "custom_fields")),
            user="rep-a1",
        )
    ).deal
    moved = await pipeline.call(
        "MoveStage",
        pb.MoveStageRequest(deal_id="D1", to_stage_id="solution_confirmed", etag=deal.etag),
        user="rep-a1",
    )
    assert moved.deal.stage_id == "solution_confirmed" and moved.deal.probability_percent == 70
    assert moved.gate_review.outcome == deal_pb2.GATE_OUTCOME_PASSED and moved.gate_review.review_id

    status = await refused(
        pipeline.call(
            "MoveStage", pb.MoveStageRequest(deal_id="D1", to_stage_id="proposal_quote"), user="rep-a1"
        )
    )
    assert precondition(status) == MOT  # the moment of truth, and only it

    q = deal_pb2.Qualification(
        budget_min=Money(amount_minor=800_000, currency="CNY"),
        budget_max=Money(amount_minor=1_200_000, currency="CNY"),
        decision_date=in_days(20),
        decision_maker_access=deal_pb2.DECISION_MAKER_ACCESS_IDENTIFIED,
    )
    await pipeline.call(
        "UpdateDeal",
        pb.UpdateDealRequest(
            deal=deal_pb2.Deal(deal_id="D1", qualification=q), update_mask=mask("qualification")
        ),
        user="rep-a1",
    )
    status = await refused(
        pipeline.call(
            "MoveStage", pb.MoveStageRequest(deal_id="D1", to_stage_id="proposal_quote"), user="rep-a1"
        )
    )
    assert precondition(status) == [MOT[3]]  # decision maker only identified, not met
    q.decision_maker_access = deal_pb2.DECISION_MAKER_ACCESS_MET
    await pipeline.call(
        "UpdateDeal",
        pb.UpdateDealRequest(
            deal=deal_pb2.Deal(deal_id="D1", qualification=q),
            update_mask=mask("qualification.decision_maker_access"),
        ),
        user="rep-a1",
    )
    moved = await pipeline.call(
        "MoveStage", pb.MoveStageRequest(deal_id="D1", to_stage_id="proposal_quote"), user="rep-a1"
    )
    assert moved.deal.probability_percent == 75
    assert moved.deal.forecast_category == types_pb2.FORECAST_CATEGORY_BEST_CASE  # the stage's default
    assert moved.deal.weighted_amount.amount_minor == 750_000
    assert [t.to_stage_id for t in moved.deal.stage_history] == [
        "initial_contact",
        "solution_confirmed",
        "proposal_quote",
    ]

    reviews = (
        await pipeline.call("ListGateReviews", pb.ListGateReviewsRequest(deal_id="D1"), user="rep-a1")
    ).gate_reviews
    assert [r.outcome for r in reviews] == [
        deal_pb2.GATE_OUTCOME_PASSED,
        deal_pb2.GATE_OUTCOME_REJECTED,
        deal_pb2.GATE_OUTCOME_REJECTED,
        deal_pb2.GATE_OUTCOME_PASSED,
        deal_pb2.GATE_OUTCOME_REJECTED,
    ]
    assert reviews[-1].review_id == info.metadata["review_id"]

    changes = (
        await pipeline.call(
            "ListDealChanges",
            pb.ListDealChangesRequest(deal_id="D1", fields=["stage", "probability"]),
            user="rep-a1",
        )
    ).changes
    assert [(c.field, c.old_value, c.new_value) for c in changes] == [
        ("stage", "", "initial_contact"),
        ("probability", "", "10"),
        ("stage", "initial_contact", "solution_confirmed"),
        ("probability", "10", "70"),
        ("stage", "solution_confirmed", "proposal_quote"),
        ("probability", "70", "75"),
    ]
    assert {c.changed_by for c in changes} == {"rep-a1"}
    as_of = (
        await pipeline.call(
            "ListDealChanges",
            pb.ListDealChangesRequest(
                deal_id="D1", fields=["stage"], change_time_before=changes[4].change_time
            ),
            user="rep-a1",
        )
    ).changes
    assert as_of[-1].new_value == "solution_confirmed"  # the deal's stage as of just before the last move

    async with pipeline.db.engine.connect() as conn:
        types = list(await conn.scalars(select(outbox.c.type).order_by(outbox.c.id)))
    assert types.count("pipeline.DealGateRejected") == 3
    assert types.count("pipeline.DealStageChanged") == 2
    assert types[0] == "pipeline.DealCreated"


async def test_backward_moves_need_a_note_and_same_stage_is_a_no_op(pipeline: Pipeline) -> None:
    await use_model(pipeline, field_gated_model())
    await create(pipeline, new_deal("B1", next_step="call"))
    await pipeline.call(
        "MoveStage", pb.MoveStageRequest(deal_id="B1", to_stage_id="needs_confirmed"), user="rep-a1"
    )
    same = await pipeline.call(
        "MoveStage", pb.MoveStageRequest(deal_id="B1", to_stage_id="needs_confirmed"), user="rep-a1"
    )
    assert same.deal.etag == "2" and not same.HasField("gate_review")
    await refused(
        pipeline.call(
            "MoveStage", pb.MoveStageRequest(deal_id="B1", to_stage_id="initial_contact"), user="rep-a1"
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    back = await pipeline.call(
        "MoveStage",
        pb.MoveStageRequest(deal_id="B1", to_stage_id="initial_contact", note="budget frozen"),
        user="rep-a1",
    )
    assert back.deal.stage_id == "initial_contact" and back.deal.probability_percent == 10
    assert back.deal.stage_history[-1].note == "budget frozen"
    await refused(
        pipeline.call(
            "MoveStage", pb.MoveStageRequest(deal_id="B1", to_stage_id="no_such_stage"), user="rep-a1"
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_creating_in_a_later_stage_runs_the_gates_up_to_it(pipeline: Pipeline) -> None:
    status = await refused(
        pipeline.call(
            "CreateDeal", pb.CreateDealRequest(deal=new_deal("L1", stage_id="proposal_quote")), user="rep-a1"
        )
    )
    kinds = {t for t, _ in precondition(status)}
    assert kinds == {"GATE_EVIDENCE", "GATE_CHECKLIST", "GATE_REQUIRED_FIELD"}
    await refused(
        pipeline.call("GetDeal", pb.GetDealRequest(deal_id="L1"), user="admin"), grpc.StatusCode.NOT_FOUND
    )


async def test_concurrent_moves_of_one_deal_one_wins_the_other_is_aborted(pipeline: Pipeline) -> None:
    await use_model(pipeline, field_gated_model())
    deal = await create(pipeline, new_deal("C1", next_step="call", custom_fields={"req_doc": "x"}))
    results = await asyncio.gather(
        *(
            pipeline.call(
                "MoveStage", pb.MoveStageRequest(deal_id="C1", to_stage_id=t, etag=deal.etag), user="rep-a1"
            )
            for t in ("needs_confirmed", "solution_confirmed")
        ),
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(ok) == 1 and len(failed) == 1
    assert failed[0].code() == grpc.StatusCode.ABORTED
    got = (await pipeline.call("GetDeal", pb.GetDealRequest(deal_id="C1"), user="rep-a1")).deal
    assert got.stage_id == ok[0].deal.stage_id and got.etag == "2"


async def test_create_validates_everything_and_replays_by_id(pipeline: Pipeline) -> None:
    bad = deal_pb2.Deal(deal_id="V1", amount=Money(amount_minor=-5, currency="cny"))
    bad.expected_close_date.year = 2025
    bad.expected_close_date.month = 2
    bad.expected_close_date.day = 30
    status = await refused(
        pipeline.call("CreateDeal", pb.CreateDealRequest(deal=bad)), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert bad_fields(status) == [
        "deal.title",
        "deal.customer.display_name",
        "deal.amount",
        "deal.expected_close_date",
    ]
    past = new_deal("V2", expected_close_date=in_days(-3))
    await refused(
        pipeline.call("CreateDeal", pb.CreateDealRequest(deal=past)), grpc.StatusCode.INVALID_ARGUMENT
    )
    closed = new_deal("V3", forecast_category=types_pb2.FORECAST_CATEGORY_CLOSED)
    await refused(
        pipeline.call("CreateDeal", pb.CreateDealRequest(deal=closed)), grpc.StatusCode.INVALID_ARGUMENT
    )

    first = await create(pipeline, new_deal("R1"))
    again = await create(pipeline, new_deal("R1"))
    assert again == first
    await refused(
        pipeline.call("CreateDeal", pb.CreateDealRequest(deal=new_deal("R1", amount=5)), user="rep-a1"),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    # Output-only input is dropped: probability cannot be typed in.
    typed = await create(pipeline, new_deal("R2", probability_percent=99))
    assert typed.probability_percent == 10
    dry = await pipeline.call(
        "CreateDeal", pb.CreateDealRequest(deal=new_deal("R3"), validate_only=True), user="rep-a1"
    )
    assert dry.deal.deal_id == "R3"
    await refused(
        pipeline.call("GetDeal", pb.GetDealRequest(deal_id="R3"), user="admin"), grpc.StatusCode.NOT_FOUND
    )


async def test_update_merges_by_mask_checks_etag_and_refuses_stage(pipeline: Pipeline) -> None:
    deal = await create(pipeline, new_deal("U1"))
    upd = deal_pb2.Deal(
        deal_id="U1", amount=Money(amount_minor=2_000_000, currency="CNY"), title="ignored", etag=deal.etag
    )
    got = (
        await pipeline.call(
            "UpdateDeal", pb.UpdateDealRequest(deal=upd, update_mask=mask("amount")), user="rep-a1"
        )
    ).deal
    assert (got.amount.amount_minor, got.title, got.weighted_amount.amount_minor, got.etag) == (
        2_000_000,
        "Deal U1",
        200_000,
        "2",
    )
    await refused(
        pipeline.call(
            "UpdateDeal", pb.UpdateDealRequest(deal=upd, update_mask=mask("amount")), user="rep-a1"
        ),
        grpc.StatusCode.ABORTED,
    )
    stage = deal_pb2.Deal(deal_id="U1", stage_id="proposal_quote")
    await refused(
        pipeline.call(
            "UpdateDeal", pb.UpdateDealRequest(deal=stage, update_mask=mask("stage_id")), user="rep-a1"
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    # A full replace cannot carry a stage past its gates either.
    full = deal_pb2.Deal()
    full.CopyFrom(got)
    full.stage_id, full.etag = "contract_approval", ""
    await refused(
        pipeline.call("UpdateDeal", pb.UpdateDealRequest(deal=full, update_mask=mask("*")), user="rep-a1"),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    full.stage_id = ""
    await refused(
        pipeline.call("UpdateDeal", pb.UpdateDealRequest(deal=full, update_mask=mask("*")), user="rep-a1"),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    full.stage_id, full.title = "initial_contact", "Replaced"
    replaced = await pipeline.call(
        "UpdateDeal", pb.UpdateDealRequest(deal=full, update_mask=mask("*")), user="rep-a1"
    )
    assert (replaced.deal.title, replaced.deal.stage_id) == ("Replaced", "initial_contact")
    typed = deal_pb2.Deal(deal_id="U1", probability_percent=99)
    await refused(
        pipeline.call(
            "UpdateDeal",
            pb.UpdateDealRequest(deal=typed, update_mask=mask("probability_percent")),
            user="rep-a1",
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    # Reassigning is a manager's: the rep may not give the deal away, the team's supervisor may.
    give = deal_pb2.Deal(deal_id="U1", owner_user_id="rep-a2")
    await refused(
        pipeline.call(
            "UpdateDeal", pb.UpdateDealRequest(deal=give, update_mask=mask("owner_user_id")), user="rep-a1"
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    moved = (
        await pipeline.call(
            "UpdateDeal", pb.UpdateDealRequest(deal=give, update_mask=mask("owner_user_id")), user="sup-a"
        )
    ).deal
    assert moved.owner_user_id == "rep-a2"
    changes = (
        await pipeline.call(
            "ListDealChanges",
            pb.ListDealChangesRequest(deal_id="U1", fields=["amount", "owner"]),
            user="sup-a",
        )
    ).changes
    assert [(c.field, c.old_value, c.new_value, c.changed_by) for c in changes][2:] == [
        ("amount", "1000000 CNY", "2000000 CNY", "rep-a1"),
        ("owner", "rep-a1", "rep-a2", "sup-a"),
    ]
    await refused(
        pipeline.call("GetDeal", pb.GetDealRequest(deal_id="U1"), user="rep-a1"), grpc.StatusCode.NOT_FOUND
    )
