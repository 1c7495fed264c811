"""GetWonRevenue: per rep / team and month, the amount won, the deals won and their average size,
counted by the won deal's close date, within the caller's org; open and lost deals never count."""

from __future__ import annotations

from datetime import date, timedelta

import grpc
import pytest
from google.type import date_pb2  # type: ignore[import-untyped]

from salesops.common.v1.types_pb2 import AttachmentRef
from salesops.pipeline.v1 import deal_pb2, forecast_pb2, stage_model_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import bad_fields, create, new_deal, refused

# Close dates well inside this month and the previous one, whatever the tenant zone's "today".
THIS = date.today().replace(day=1)
LAST = (THIS - timedelta(days=1)).replace(day=10)
SOON = max(date.today() + timedelta(days=1), THIS)  # open deals close ahead (this month but on its last day)


def d(day: date) -> date_pb2.Date:
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


async def won(p: Pipeline, deal_id: str, user: str, amount: int, close: date) -> None:
    await create(p, new_deal(deal_id, amount=amount), user=user)
    ev = deal_pb2.DealEvidence(
        evidence_id=f"{deal_id}-sc",
        evidence_type_id="signed_contract",
        attachment=AttachmentRef(uri="s3://c"),
    )
    await p.call("CreateDealEvidence", pb.CreateDealEvidenceRequest(deal_id=deal_id, evidence=ev), user=user)
    await p.call("MarkWon", pb.MarkWonRequest(deal_id=deal_id, close_date=d(close)), user=user)


async def seed(p: Pipeline) -> None:
    await won(p, "W1", "rep-a1", 1_000_000, THIS)
    await won(p, "W2", "rep-a1", 3_000_000, THIS + timedelta(days=1) if date.today().day > 2 else THIS)
    await won(p, "W3", "rep-a1", 500_000, LAST)
    await won(p, "W4", "rep-a2", 2_000_000, LAST)
    await won(p, "W5", "rep-b1", 7_000_000, THIS)
    await create(p, new_deal("OPEN1", amount=9_000_000, expected_close_date=d(SOON)), user="rep-a2")
    await create(p, new_deal("LOST1", amount=9_000_000, expected_close_date=d(SOON)), user="rep-a2")
    lost = pb.MarkLostRequest(deal_id="LOST1", category=stage_model_pb2.LOST_REASON_CATEGORY_PRICE)
    await p.call("MarkLost", lost, user="rep-a2")


def table(series: forecast_pb2.WonRevenueSeries) -> dict[str, tuple[int, int, int]]:
    """Month -> (won, deals, average) in minor units."""
    return {
        f"{pt.period.start_date.year}-{pt.period.start_date.month:02d}": (
            pt.won_amount.amount_minor,
            pt.won_deal_count,
            pt.average_deal_size.amount_minor,
        )
        for pt in series.points
    }


def month(day: date) -> str:
    return f"{day.year}-{day.month:02d}"


async def report(p: Pipeline, user: str, **kw: object) -> pb.GetWonRevenueResponse:
    req = pb.GetWonRevenueRequest(granularity=types_pb2.PERIOD_GRANULARITY_MONTH, period_count=3, **kw)  # type: ignore[arg-type]
    resp: pb.GetWonRevenueResponse = await p.call("GetWonRevenue", req, user=user)
    return resp


@pytest.mark.asyncio
async def test_per_rep_and_month_with_average_size(pipeline: Pipeline) -> None:
    await seed(pipeline)
    got = await report(pipeline, "director-east", group_by=types_pb2.ORG_LEVEL_REP)
    rows = {r.key: table(r) for r in got.rows}
    assert set(rows) == {"rep-a1", "rep-a2", "rep-b1"}
    assert rows["rep-a1"][month(THIS)] == (4_000_000, 2, 2_000_000)
    assert rows["rep-a1"][month(LAST)] == (500_000, 1, 500_000)
    assert rows["rep-a2"][month(LAST)] == (2_000_000, 1, 2_000_000)
    assert rows["rep-a2"][month(THIS)] == (0, 0, 0)  # its open and lost deals are not won revenue
    assert rows["rep-b1"][month(THIS)] == (7_000_000, 1, 7_000_000)
    assert len(got.total.points) == 3 and list(table(got.total))[-1] == month(THIS)  # oldest first
    assert table(got.total)[month(THIS)] == (11_000_000, 3, 11_000_000 // 3)
    assert got.rows[0].key == "rep-b1"  # largest won amount first


@pytest.mark.asyncio
async def test_scoped_by_the_viewers_org(pipeline: Pipeline) -> None:
    await seed(pipeline)
    team = await report(pipeline, "sup-a", group_by=types_pb2.ORG_LEVEL_REP)
    assert {r.key for r in team.rows} == {"rep-a1", "rep-a2"}
    assert table(team.total)[month(THIS)] == (4_000_000, 2, 2_000_000)
    teams = await report(pipeline, "director-east", group_by=types_pb2.ORG_LEVEL_TEAM)
    assert {r.key: table(r)[month(LAST)][0] for r in teams.rows} == {
        "east/team-a": 2_500_000,
        "east/team-b": 0,
    }
    assert {r.key: table(r)[month(THIS)][0] for r in teams.rows} == {
        "east/team-a": 4_000_000,
        "east/team-b": 7_000_000,
    }
    status = await refused(
        pipeline.call(
            "GetWonRevenue",
            pb.GetWonRevenueRequest(scope=types_pb2.OrgScope(org_path="east/team-b")),
            user="sup-a",
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert status is not None


@pytest.mark.asyncio
async def test_bad_period_count_is_a_field_error(pipeline: Pipeline) -> None:
    status = await refused(
        pipeline.call("GetWonRevenue", pb.GetWonRevenueRequest(period_count=99), user="director-east"),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert bad_fields(status) == ["period_count"]


@pytest.mark.asyncio
async def test_total_is_labelled_with_the_viewers_actual_scope(pipeline: Pipeline) -> None:
    """The total names what its figures cover: a supervisor's team, a director's region, the company
    for an admin, the rep's own deals for a rep; never "company" for a team's figures."""
    await seed(pipeline)
    expect = {
        "sup-a": (types_pb2.ORG_LEVEL_TEAM, "east/team-a", "east/team-a", 4_000_000),
        "director-east": (types_pb2.ORG_LEVEL_REGION, "east", "east", 11_000_000),
        "admin": (types_pb2.ORG_LEVEL_COMPANY, "", "company", 11_000_000),
        "rep-a1": (types_pb2.ORG_LEVEL_REP, "rep-a1", "rep-a1", 4_000_000),
    }
    for user, (level, key, name, this_month) in expect.items():
        got = await report(pipeline, user)
        assert (got.total.level, got.total.key) == (level, key), user
        assert got.total.display_name in (name, "Rep A1"), user
        assert table(got.total)[month(THIS)][0] == this_month, user
    # A supervisor's default rows are the team's reps (one level below the team), not one "east" row.
    team = await report(pipeline, "sup-a")
    assert {r.key for r in team.rows} == {"rep-a1", "rep-a2"}
    # An asked scope labels the total the same way.
    asked = await report(pipeline, "director-east", scope=types_pb2.OrgScope(org_path="east"))
    assert (asked.total.level, asked.total.key) == (types_pb2.ORG_LEVEL_REGION, "east")
    # A rep naming their team still gets (and is told they get) their own deals.
    mine = await report(pipeline, "rep-a1", scope=types_pb2.OrgScope(org_path="east/team-a"))
    assert (mine.total.level, mine.total.key) == (types_pb2.ORG_LEVEL_REP, "rep-a1")
    # A manager naming one rep gets that rep's total, labelled with the rep.
    one = await report(pipeline, "sup-a", scope=types_pb2.OrgScope(user_ids=["rep-a2"]))
    assert (one.total.level, one.total.key) == (types_pb2.ORG_LEVEL_REP, "rep-a2")
    assert table(one.total)[month(LAST)][0] == 2_000_000
