"""Role x org scope on every read path, another tenant, ListDeals filters and keyset paging, stage models."""

from __future__ import annotations

import grpc
import pytest

from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import (
    bad_fields,
    create,
    field_gated_model,
    in_days,
    mask,
    new_deal,
    precondition,
    refused,
    use_model,
)

OWNERS = {"A1": "rep-a1", "A2": "rep-a1", "A3": "rep-a2", "B1": "rep-b1", "B2": "rep-b2"}
SEES = {
    "rep-a1": {"A1", "A2"},
    "rep-a2": {"A3"},
    "sup-a": {"A1", "A2", "A3"},
    "sup-b": {"B1", "B2"},
    "director-east": set(OWNERS),
    "admin": set(OWNERS),
}


async def seed(pipeline: Pipeline) -> None:
    for i, (deal_id, owner) in enumerate(OWNERS.items()):
        await create(
            pipeline,
            new_deal(deal_id, amount=100 * (i % 2 + 1), expected_close_date=in_days(10 + i)),
            user=owner,
        )


@pytest.mark.parametrize("user", list(SEES))
async def test_each_role_sees_its_scope_on_get_list_and_dry_run(pipeline: Pipeline, user: str) -> None:
    await seed(pipeline)
    listed = await pipeline.call("ListDeals", pb.ListDealsRequest(), user=user)
    assert {d.deal_id for d in listed.deals} == SEES[user]
    assert listed.total_size == len(SEES[user])
    for deal_id in OWNERS:
        get = pipeline.call("GetDeal", pb.GetDealRequest(deal_id=deal_id), user=user)
        gate = pipeline.call("CheckGate", pb.CheckGateRequest(deal_id=deal_id), user=user)
        changes = pipeline.call("ListDealChanges", pb.ListDealChangesRequest(deal_id=deal_id), user=user)
        if deal_id in SEES[user]:
            assert (await get).deal.deal_id == deal_id
            assert (await gate).gate_review.deal_id == deal_id
            assert (await changes).changes
        else:
            for call in (get, gate, changes):
                await refused(call, grpc.StatusCode.NOT_FOUND)
    if "B1" not in SEES[user]:
        move = pb.MoveStageRequest(deal_id="B1", to_stage_id="needs_confirmed")
        await refused(pipeline.call("MoveStage", move, user=user), grpc.StatusCode.NOT_FOUND)


async def test_another_tenant_sees_nothing(pipeline: Pipeline) -> None:
    await seed(pipeline)
    assert not (await pipeline.call("ListDeals", pb.ListDealsRequest(), user="admin", tenant="acme")).deals
    await refused(
        pipeline.call("GetDeal", pb.GetDealRequest(deal_id="A1"), user="admin", tenant="acme"),
        grpc.StatusCode.NOT_FOUND,
    )
    # The same client-made id in another tenant is another deal.
    other = await pipeline.call(
        "CreateDeal", pb.CreateDealRequest(deal=new_deal("A1")), user="rep-a1", tenant="acme"
    )
    assert other.deal.deal_id == "A1"


async def test_filters_orders_and_pages(pipeline: Pipeline) -> None:
    await seed(pipeline)
    f = pb.DealFilter(org_path="east/team-a")
    got = await pipeline.call("ListDeals", pb.ListDealsRequest(filter=f), user="director-east")
    assert {d.deal_id for d in got.deals} == {"A1", "A2", "A3"}
    me = await pipeline.call(
        "ListDeals", pb.ListDealsRequest(filter=pb.DealFilter(owner_user_ids=["me"])), user="rep-a1"
    )
    assert {d.deal_id for d in me.deals} == {"A1", "A2"}
    text = await pipeline.call(
        "ListDeals", pb.ListDealsRequest(filter=pb.DealFilter(query="of b")), user="admin"
    )
    assert {d.deal_id for d in text.deals} == {"B1", "B2"}
    none = await pipeline.call(
        "ListDeals", pb.ListDealsRequest(filter=pb.DealFilter(query="%")), user="admin"
    )
    assert not none.deals  # LIKE wildcards are literal

    for size in (1, 2, 3):
        seen: list[str] = []
        token = ""
        while True:
            page = await pipeline.call(
                "ListDeals",
                pb.ListDealsRequest(order_by="amount desc", page_size=size, page_token=token),
                user="admin",
            )
            seen += [d.deal_id for d in page.deals]
            assert page.total_size == 5
            token = page.next_page_token
            if not token:
                break
        # Ties on amount are broken by the id: every deal once, in a stable order.
        assert seen == ["A2", "B1", "A1", "A3", "B2"]
    first = await pipeline.call(
        "ListDeals", pb.ListDealsRequest(page_size=1, order_by="expected_close_date"), user="admin"
    )
    assert first.deals[0].deal_id == "A1"
    for bad in (
        pb.ListDealsRequest(page_size=1, order_by="amount", page_token=first.next_page_token),
        pb.ListDealsRequest(page_token="forged"),
        pb.ListDealsRequest(order_by="owner"),
    ):
        await refused(pipeline.call("ListDeals", bad, user="admin"), grpc.StatusCode.INVALID_ARGUMENT)
    await refused(
        pipeline.call(
            "ListDeals",
            pb.ListDealsRequest(
                page_size=1, order_by="expected_close_date", page_token=first.next_page_token
            ),
            user="admin",
            tenant="acme",
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    basic = await pipeline.call("ListDeals", pb.ListDealsRequest(), user="admin")
    assert all(not d.stage_history for d in basic.deals)
    full = await pipeline.call("GetDeal", pb.GetDealRequest(deal_id="A1"), user="admin")
    assert len(full.deal.stage_history) == 1


async def test_stage_model_versions_admin_only_and_validated(pipeline: Pipeline) -> None:
    default = (await pipeline.call("GetStageModel", pb.GetStageModelRequest(), user="rep-a1")).stage_model
    assert default.version == 0 and len(default.stages) == 6
    model = field_gated_model()
    await refused(
        pipeline.call("UpdateStageModel", pb.UpdateStageModelRequest(stage_model=model), user="sup-a"),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    saved = await use_model(pipeline, model)
    assert saved.version == 1 and saved.etag == "1" and saved.audit.updated_by == "admin"
    # Five stages, and a gate on a field Deal does not have: both refused at once.
    bad = pb.UpdateStageModelRequest(stage_model=saved, update_mask=mask("stages"))
    del bad.stage_model.stages[5]
    bad.stage_model.stages[1].entry_criteria.required_fields.add(field_path="qualification.budget")
    status = await refused(
        pipeline.call("UpdateStageModel", bad, user="admin"), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert bad_fields(status) == ["stage_model.stages", "stage_model.stages[1].entry_criteria"]
    stale = pb.UpdateStageModelRequest(stage_model=default, update_mask=mask("stages"))
    await refused(pipeline.call("UpdateStageModel", stale, user="admin"), grpc.StatusCode.ABORTED)

    # Removing a stage that holds open deals needs a mapping; with one, the deals move and re-price.
    await create(pipeline, new_deal("M1", next_step="x"))
    await pipeline.call(
        "MoveStage", pb.MoveStageRequest(deal_id="M1", to_stage_id="needs_confirmed"), user="rep-a1"
    )
    fewer = pb.UpdateStageModelRequest(stage_model=saved, update_mask=mask("stages"))
    fewer.stage_model.stages[1].stage_id = "discovery"
    fewer.stage_model.stages[1].win_probability_percent = 20
    status = await refused(pipeline.call("UpdateStageModel", fewer, user="admin"))
    assert precondition(status) == [("STAGE_MAPPING", "needs_confirmed")]
    # A mapping cannot carry deals past gates: to proposal_quote the moment of truth refuses M1.
    fewer.stage_mapping["needs_confirmed"] = "proposal_quote"
    status = await refused(pipeline.call("UpdateStageModel", fewer, user="admin"))
    assert ("GATE_REQUIRED_FIELD", "M1/proposal_quote/qualification.budget_min") in precondition(status)
    assert (
        await pipeline.call("GetStageModel", pb.GetStageModelRequest(), user="admin")
    ).stage_model.version == 1
    fewer.stage_mapping["needs_confirmed"] = "discovery"
    done = await pipeline.call("UpdateStageModel", fewer, user="admin")
    assert done.stage_model.version == 2 and done.affected_deal_count == 1
    deal = (await pipeline.call("GetDeal", pb.GetDealRequest(deal_id="M1"), user="rep-a1")).deal
    assert (deal.stage_id, deal.probability_percent, deal.stage_model_version) == ("discovery", 20, 2)

    versions = await pipeline.call(
        "ListStageModelVersions", pb.ListStageModelVersionsRequest(page_size=1), user="rep-a1"
    )
    assert [m.version for m in versions.stage_models] == [2]
    older = await pipeline.call(
        "ListStageModelVersions",
        pb.ListStageModelVersionsRequest(page_size=1, page_token=versions.next_page_token),
        user="rep-a1",
    )
    assert [m.version for m in older.stage_models] == [1] and not older.next_page_token
    v1 = (await pipeline.call("GetStageModel", pb.GetStageModelRequest(version=1), user="rep-a1")).stage_model
    assert v1.stages[1].stage_id == "needs_confirmed"
    await refused(
        pipeline.call("GetStageModel", pb.GetStageModelRequest(version=9)), grpc.StatusCode.NOT_FOUND
    )
