"""GetForecast puts targets beside the forecast: coverage = open pipeline / (target - won so far),
against the hand-computed deals of test_forecast (March: A1 1.0M, A2 2.0M, A3 0.5M open; B2 0.4M won;
B1 lost and B3 omitted stay out of the open pipeline)."""

from __future__ import annotations

from typing import Any

import pytest

from salesops.pipeline.v1 import forecast_pb2, target_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from tests.pipeline.conftest import Pipeline
from tests.pipeline.test_forecast import forecast, march
from tests.pipeline.test_forecast import seed as seed_deals
from tests.pipeline.test_targets import COMPANY, REGION, REP, TEAM, profiles, put, target

MARCH = types_pb2.SalesPeriod(granularity=types_pb2.PERIOD_GRANULARITY_MONTH, start_date=march(1))
MEASURED, REACHED, NONE = (
    target_pb2.COVERAGE_STATE_MEASURED,
    target_pb2.COVERAGE_STATE_TARGET_REACHED,
    target_pb2.COVERAGE_STATE_NO_TARGET,
)


async def fixture(p: Pipeline) -> None:
    await profiles(p)
    await seed_deals(p)
    await put(p, target("co", COMPANY, 2_000_000, challenge=2_500_000, period=MARCH))
    await put(p, target("east", REGION, 1_900_000, org="east", period=MARCH))
    await put(p, target("ta", TEAM, 1_000_000, org="east/team-a", period=MARCH), user="director-east")
    await put(p, target("tb", TEAM, 300_000, org="east/team-b", period=MARCH), user="director-east")
    await put(p, target("a1", REP, 600_000, user="rep-a1", period=MARCH), user="sup-a")
    await put(p, target("a2", REP, 400_000, user="rep-a2", period=MARCH), user="sup-a")


def cov(t: forecast_pb2.ForecastTotals) -> tuple[Any, ...]:
    """(state, target, remaining, ratio) with unset fields as None."""
    return (
        t.coverage_state,
        t.target_amount.amount_minor if t.HasField("target_amount") else None,
        t.remaining_target_amount.amount_minor if t.HasField("remaining_target_amount") else None,
        t.coverage_ratio if t.HasField("coverage_ratio") else None,
    )


async def test_coverage_is_open_pipeline_over_the_target_still_to_close(pipeline: Pipeline) -> None:
    await fixture(pipeline)
    company = await forecast(pipeline)
    t = company.totals
    assert (t.open_pipeline_amount.amount_minor, t.won_amount.amount_minor) == (3_500_000, 400_000)
    assert cov(t) == (MEASURED, 2_000_000, 1_600_000, pytest.approx(3_500_000 / 1_600_000))
    assert t.challenge_target_amount.amount_minor == 2_500_000
    assert [(r.key, cov(r.totals)) for r in company.rows] == [
        ("east", (MEASURED, 1_900_000, 1_500_000, pytest.approx(3_500_000 / 1_500_000)))
    ]

    teams = await forecast(pipeline, scope=types_pb2.OrgScope(org_path="east"))
    assert cov(teams.totals)[1] == 1_900_000
    assert {r.key: cov(r.totals) for r in teams.rows} == {
        "east/team-a": (MEASURED, 1_000_000, 1_000_000, pytest.approx(3.5)),
        "east/team-b": (REACHED, 300_000, 0, None),  # won 400k of 300k: nothing left to close
    }
    reps = await forecast(pipeline, group_by=types_pb2.ORG_LEVEL_REP)
    assert {r.key: cov(r.totals) for r in reps.rows} == {
        "rep-a1": (MEASURED, 600_000, 600_000, pytest.approx(5.0)),
        "rep-a2": (MEASURED, 400_000, 400_000, pytest.approx(1.25)),
        "rep-b1": (NONE, None, None, None),
        "rep-b2": (NONE, None, None, None),
    }
    pair = await forecast(pipeline, scope=types_pb2.OrgScope(user_ids=["rep-a1", "rep-a2"]))
    assert cov(pair.totals) == (MEASURED, 1_000_000, 1_000_000, pytest.approx(3.5))
    partial = await forecast(pipeline, scope=types_pb2.OrgScope(user_ids=["rep-a1", "rep-b1"]))
    assert cov(partial.totals)[0] == NONE  # rep-b1 has no target: no sum of half the scope


async def test_each_caller_sees_the_target_of_their_own_scope(pipeline: Pipeline) -> None:
    await fixture(pipeline)
    team = await forecast(pipeline, user="sup-a")
    assert cov(team.totals) == (MEASURED, 1_000_000, 1_000_000, pytest.approx(3.5))
    # Default rows are the team's reps, each with their own target.
    assert {r.key: cov(r.totals)[1] for r in team.rows} == {"rep-a1": 600_000, "rep-a2": 400_000}
    region = await forecast(pipeline, user="sup-a", group_by=types_pb2.ORG_LEVEL_REGION)
    assert cov(region.rows[0].totals)[0] == NONE  # the region row holds only team A: no region target
    other = await forecast(pipeline, user="sup-b")
    assert cov(other.totals) == (REACHED, 300_000, 0, None)
    mine = await forecast(pipeline, user="rep-a1")
    assert cov(mine.totals) == (MEASURED, 600_000, 600_000, pytest.approx(5.0))
    assert [(r.key, cov(r.totals)[1]) for r in mine.rows] == [("rep-a1", 600_000)]  # own row, own target
    team_row = await forecast(pipeline, user="rep-a1", group_by=types_pb2.ORG_LEVEL_CITY)
    assert team_row.rows and all(cov(r.totals)[0] == NONE for r in team_row.rows)  # team row, own deals only
    named = await forecast(pipeline, user="rep-a1", scope=types_pb2.OrgScope(org_path="east/team-a"))
    assert cov(named.totals)[1] == 600_000  # naming their team, a rep still sees their own deals and target
    director = await forecast(pipeline, user="director-east")
    assert cov(director.totals)[1] == 1_900_000
    assert cov((await forecast(pipeline, user="rep-b1")).totals)[0] == NONE
    assert cov((await forecast(pipeline, tenant="acme")).totals)[0] == NONE


async def test_no_target_for_a_week_and_none_without_targets(pipeline: Pipeline) -> None:
    await seed_deals(pipeline)
    bare = await forecast(pipeline)
    assert cov(bare.totals) == (NONE, None, None, None)
    assert bare.totals.open_pipeline_amount.amount_minor == 3_500_000
    await profiles(pipeline)
    await put(pipeline, target("co", COMPANY, 2_000_000, period=MARCH))
    assert cov((await forecast(pipeline)).totals)[0] == MEASURED
    week = types_pb2.SalesPeriod(granularity=types_pb2.PERIOD_GRANULARITY_WEEK, start_date=march(17))
    weekly = (await pipeline.call("GetForecast", pb.GetForecastRequest(period=week))).forecast
    assert cov(weekly.totals)[0] == NONE


async def test_a_snapshot_records_the_targets_and_coverage_the_forecast_shows(pipeline: Pipeline) -> None:
    await fixture(pipeline)
    request = pb.TakeForecastSnapshotRequest(period=MARCH, request_id="with-targets")
    snap = (await pipeline.call("TakeForecastSnapshot", request)).snapshot
    live = await forecast(pipeline)
    assert snap.company_totals == live.totals
    assert cov(snap.company_totals) == (MEASURED, 2_000_000, 1_600_000, pytest.approx(3_500_000 / 1_600_000))
    rows = {(r.level, r.key): cov(r.totals) for r in snap.rows}
    teams = await forecast(pipeline, scope=types_pb2.OrgScope(org_path="east"))
    reps = await forecast(pipeline, group_by=types_pb2.ORG_LEVEL_REP)
    for level, shown in ((types_pb2.ORG_LEVEL_TEAM, teams), (types_pb2.ORG_LEVEL_REP, reps)):
        assert {r.key: cov(r.totals) for r in shown.rows} == {
            k: v for (lv, k), v in rows.items() if lv == level
        }
    assert rows[(types_pb2.ORG_LEVEL_REGION, "east")][:3] == (MEASURED, 1_900_000, 1_500_000)
