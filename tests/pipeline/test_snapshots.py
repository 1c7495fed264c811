"""Forecast snapshots: the forecast frozen with every level's rows and every deal, replay-safe, read in scope."""

from __future__ import annotations

import grpc
from sqlalchemy import func, select

from salesops.common.v1.types_pb2 import AttachmentRef
from salesops.pipeline.v1 import deal_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline.store import SnapshotDealRow
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import refused
from tests.pipeline.test_forecast import forecast, march, seed

MONTH = types_pb2.SalesPeriod(granularity=types_pb2.PERIOD_GRANULARITY_MONTH, start_date=march(9))


async def test_a_snapshot_freezes_the_forecast_and_its_deals(pipeline: Pipeline) -> None:
    await seed(pipeline)
    await refused(
        pipeline.call("TakeForecastSnapshot", pb.TakeForecastSnapshotRequest(period=MONTH), user="sup-a"),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    taken = (
        await pipeline.call(
            "TakeForecastSnapshot", pb.TakeForecastSnapshotRequest(period=MONTH, request_id="r1")
        )
    ).snapshot
    again = (
        await pipeline.call(
            "TakeForecastSnapshot", pb.TakeForecastSnapshotRequest(period=MONTH, request_id="r1")
        )
    ).snapshot
    assert again.snapshot_id == taken.snapshot_id  # a replayed request is the same snapshot
    live = await forecast(pipeline)
    assert taken.company_totals == live.totals
    assert (taken.period.start_date.day, taken.period.end_date.day, taken.taken_by) == (1, 31, "admin")
    levels = {(types_pb2.OrgLevel.Name(r.level), r.key) for r in taken.rows}
    assert {
        ("ORG_LEVEL_REGION", "east"),
        ("ORG_LEVEL_CITY", "east/team-a"),
        ("ORG_LEVEL_REP", "rep-a1"),
    } <= levels
    async with pipeline.db.session("demo") as session:
        copied = await session.scalar(
            select(func.count())
            .select_from(SnapshotDealRow)
            .where(SnapshotDealRow.snapshot_id == taken.snapshot_id)
        )
    assert copied == 6  # every March deal as it stood (A1-A3, B3 open, B2 won, B1 lost); A4 in April is out

    # The live forecast moves on; the snapshot does not.
    ev = deal_pb2.DealEvidence(
        evidence_id="m", evidence_type_id="meeting_minutes", attachment=AttachmentRef(uri="s3://m")
    )
    await pipeline.call(
        "CreateDealEvidence", pb.CreateDealEvidenceRequest(deal_id="A1", evidence=ev), user="rep-a1"
    )
    await pipeline.call(
        "MoveStage", pb.MoveStageRequest(deal_id="A1", to_stage_id="needs_confirmed"), user="rep-a1"
    )
    kept = (
        await pipeline.call(
            "GetForecastSnapshot", pb.GetForecastSnapshotRequest(snapshot_id=taken.snapshot_id)
        )
    ).snapshot
    assert kept.company_totals.weighted_amount.amount_minor == 350_000
    assert (await forecast(pipeline)).totals.weighted_amount.amount_minor == 550_000


async def test_snapshots_are_read_in_scope(pipeline: Pipeline) -> None:
    await seed(pipeline)
    taken = (
        await pipeline.call("TakeForecastSnapshot", pb.TakeForecastSnapshotRequest(period=MONTH))
    ).snapshot
    get = pb.GetForecastSnapshotRequest(snapshot_id=taken.snapshot_id)
    sup = (await pipeline.call("GetForecastSnapshot", get, user="sup-a")).snapshot
    assert not sup.HasField("company_totals")
    assert {r.key for r in sup.rows} == {"east/team-a", "rep-a1", "rep-a2"}
    rep = (await pipeline.call("GetForecastSnapshot", get, user="rep-a1")).snapshot
    assert [(r.key, r.totals.weighted_amount.amount_minor) for r in rep.rows] == [("rep-a1", 300_000)]
    scoped = pb.GetForecastSnapshotRequest(
        snapshot_id=taken.snapshot_id, scope=types_pb2.OrgScope(org_path="east/team-b")
    )
    assert {r.key for r in (await pipeline.call("GetForecastSnapshot", scoped)).snapshot.rows} == {
        "east/team-b",
        "rep-b1",
        "rep-b2",
    }
    await refused(
        pipeline.call("GetForecastSnapshot", scoped, user="sup-a"), grpc.StatusCode.PERMISSION_DENIED
    )
    basic = pb.GetForecastSnapshotRequest(snapshot_id=taken.snapshot_id, view=pb.SNAPSHOT_VIEW_BASIC)
    assert not (await pipeline.call("GetForecastSnapshot", basic)).snapshot.rows
    listed = await pipeline.call(
        "ListForecastSnapshots", pb.ListForecastSnapshotsRequest(period=MONTH), user="rep-a1"
    )
    assert [s.snapshot_id for s in listed.snapshots] == [taken.snapshot_id] and not listed.snapshots[0].rows
    other = types_pb2.SalesPeriod(granularity=types_pb2.PERIOD_GRANULARITY_QUARTER, start_date=march(9))
    assert not (
        await pipeline.call("ListForecastSnapshots", pb.ListForecastSnapshotsRequest(period=other))
    ).snapshots
    await refused(pipeline.call("GetForecastSnapshot", get, tenant="acme"), grpc.StatusCode.NOT_FOUND)
