"""Flows between two snapshots of a period against a hand-computed fixture: new, pulled in, pushed out,
amount up, won, lost, removed; per group, within the caller's scope."""

from __future__ import annotations

import grpc

from salesops.common.v1.types_pb2 import AttachmentRef, Money
from salesops.pipeline.v1 import deal_pb2, forecast_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import create, mask, new_deal, refused
from tests.pipeline.test_forecast import march, seed
from tests.pipeline.test_snapshots import MONTH

PRICE = 1  # LOST_REASON_CATEGORY_PRICE


def kinds(flows: object) -> dict[str, tuple[int, int]]:
    return {
        forecast_pb2.FlowKind.Name(t.kind).removeprefix("FLOW_KIND_"): (t.deal_count, t.amount.amount_minor)
        for t in flows  # type: ignore[attr-defined]
    }


async def snapshot(p: Pipeline) -> str:
    snap_id: str = (
        await p.call("TakeForecastSnapshot", pb.TakeForecastSnapshotRequest(period=MONTH))
    ).snapshot.snapshot_id
    return snap_id


async def test_flows_between_two_snapshots(pipeline: Pipeline) -> None:
    await seed(pipeline)
    await create(pipeline, new_deal("B4", amount=400_000, expected_close_date=march(25)), user="rep-b2")
    await create(pipeline, new_deal("B5", amount=100_000, expected_close_date=march(26)), user="rep-b1")
    first = await snapshot(pipeline)

    up = deal_pb2.Deal(deal_id="A1", amount=Money(amount_minor=1_200_000, currency="CNY"))
    await pipeline.call(
        "UpdateDeal", pb.UpdateDealRequest(deal=up, update_mask=mask("amount")), user="rep-a1"
    )
    await pipeline.call(
        "ConfirmDeal", pb.ConfirmDealRequest(deal_id="A2", expected_close_date=march(3, 4)), user="rep-a1"
    )
    await pipeline.call("MarkLost", pb.MarkLostRequest(deal_id="A3", category=PRICE), user="rep-a2")  # type: ignore[arg-type]
    pull = deal_pb2.Deal(deal_id="A4", expected_close_date=march(12))
    await pipeline.call(
        "UpdateDeal", pb.UpdateDealRequest(deal=pull, update_mask=mask("expected_close_date")), user="rep-a2"
    )
    await create(pipeline, new_deal("A5", amount=300_000, expected_close_date=march(18)), user="rep-a1")
    ev = deal_pb2.DealEvidence(
        evidence_id="sc4", evidence_type_id="signed_contract", attachment=AttachmentRef(uri="s3://4")
    )
    await pipeline.call(
        "CreateDealEvidence", pb.CreateDealEvidenceRequest(deal_id="B4", evidence=ev), user="rep-b2"
    )
    await pipeline.call("MarkWon", pb.MarkWonRequest(deal_id="B4", close_date=march(20)), user="rep-b2")
    omit = pb.ConfirmDealRequest(deal_id="B5", forecast_category=types_pb2.FORECAST_CATEGORY_OMITTED)
    await pipeline.call("ConfirmDeal", omit, user="rep-b1")
    second = await snapshot(pipeline)

    compare = pb.CompareForecastSnapshotsRequest(from_snapshot_id=first, to_snapshot_id=second)
    flows = (await pipeline.call("CompareForecastSnapshots", compare)).flows
    assert kinds(flows.totals) == {
        "NEW": (1, 300_000),
        "PULLED_IN": (1, 700_000),
        "PUSHED_OUT": (1, 2_000_000),
        "AMOUNT_UP": (1, 200_000),
        "WON": (1, 400_000),
        "LOST": (1, 500_000),
        "REMOVED": (1, 100_000),
    }
    assert [r.key for r in flows.rows] == ["east"]

    by_rep = pb.CompareForecastSnapshotsRequest(
        from_snapshot_id=first, to_snapshot_id=second, group_by=types_pb2.ORG_LEVEL_REP
    )
    reps = {
        r.key: kinds(r.flows) for r in (await pipeline.call("CompareForecastSnapshots", by_rep)).flows.rows
    }
    assert reps == {
        "rep-a1": {"NEW": (1, 300_000), "PUSHED_OUT": (1, 2_000_000), "AMOUNT_UP": (1, 200_000)},
        "rep-a2": {"PULLED_IN": (1, 700_000), "LOST": (1, 500_000)},
        "rep-b1": {"REMOVED": (1, 100_000)},
        "rep-b2": {"WON": (1, 400_000)},
    }
    team_a = (await pipeline.call("CompareForecastSnapshots", compare, user="sup-a")).flows
    assert set(kinds(team_a.totals)) == {"NEW", "PULLED_IN", "PUSHED_OUT", "AMOUNT_UP", "LOST"}
    mine = (await pipeline.call("CompareForecastSnapshots", compare, user="rep-b2")).flows
    assert kinds(mine.totals) == {"WON": (1, 400_000)}

    backwards = pb.CompareForecastSnapshotsRequest(from_snapshot_id=second, to_snapshot_id=first)
    await refused(pipeline.call("CompareForecastSnapshots", backwards), grpc.StatusCode.INVALID_ARGUMENT)
    quarter = types_pb2.SalesPeriod(granularity=types_pb2.PERIOD_GRANULARITY_QUARTER, start_date=march(9))
    other = (
        await pipeline.call("TakeForecastSnapshot", pb.TakeForecastSnapshotRequest(period=quarter))
    ).snapshot
    mixed = pb.CompareForecastSnapshotsRequest(from_snapshot_id=first, to_snapshot_id=other.snapshot_id)
    await refused(pipeline.call("CompareForecastSnapshots", mixed), grpc.StatusCode.INVALID_ARGUMENT)
    await refused(
        pipeline.call("CompareForecastSnapshots", compare, tenant="acme"), grpc.StatusCode.NOT_FOUND
    )
