"""GetForecast against a hand-computed fixture: weighted = sum(amount x probability) of open deals
closing in the period, per category, won apart, lost out, by region / team / rep, within the scope."""

from __future__ import annotations

import dataclasses
from datetime import date

import grpc
import pytest
from google.type import date_pb2  # type: ignore[import-untyped]
from sqlalchemy import literal, select, update

from salesops.common.v1.types_pb2 import AttachmentRef
from salesops.pipeline.v1 import deal_pb2, forecast_pb2, stage_model_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline.domain import forecast as fc
from services.pipeline.repositories.forecast import ForecastSums, org_prefix
from services.pipeline.store import DealRow, transactions
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import create, mask, new_deal, refused

YEAR = date.today().year + 1
PIPELINE, BEST, COMMIT, OMITTED = (
    types_pb2.FORECAST_CATEGORY_PIPELINE,
    types_pb2.FORECAST_CATEGORY_BEST_CASE,
    types_pb2.FORECAST_CATEGORY_COMMIT,
    types_pb2.FORECAST_CATEGORY_OMITTED,
)


def march(day: int, month: int = 3) -> date_pb2.Date:
    return date_pb2.Date(year=YEAR, month=month, day=day)


async def seed(p: Pipeline) -> None:
    await create(p, new_deal("A1", amount=1_000_000, expected_close_date=march(10)), user="rep-a1")
    await create(
        p,
        new_deal("A2", amount=2_000_000, expected_close_date=march(20), forecast_category=COMMIT),
        user="rep-a1",
    )
    await create(
        p,
        new_deal("A3", amount=500_000, expected_close_date=march(31), forecast_category=BEST),
        user="rep-a2",
    )
    await create(
        p, new_deal("A4", amount=700_000, expected_close_date=march(1, 4)), user="rep-a2"
    )  # April: out
    await create(p, new_deal("B1", amount=300_000, expected_close_date=march(1)), user="rep-b1")
    await p.call(
        "MarkLost",
        pb.MarkLostRequest(deal_id="B1", category=stage_model_pb2.LOST_REASON_CATEGORY_PRICE),
        user="rep-b1",
    )
    await create(p, new_deal("B2", amount=400_000, expected_close_date=march(28)), user="rep-b2")
    ev = deal_pb2.DealEvidence(
        evidence_id="sc", evidence_type_id="signed_contract", attachment=AttachmentRef(uri="s3://c")
    )
    await p.call("CreateDealEvidence", pb.CreateDealEvidenceRequest(deal_id="B2", evidence=ev), user="rep-b2")
    await p.call("MarkWon", pb.MarkWonRequest(deal_id="B2", close_date=march(15)), user="rep-b2")
    await create(
        p,
        new_deal("B3", amount=100_000, expected_close_date=march(5), forecast_category=OMITTED),
        user="rep-b1",
    )


async def forecast(
    p: Pipeline, user: str = "admin", tenant: str = "demo", **kw: object
) -> forecast_pb2.Forecast:
    period = types_pb2.SalesPeriod(granularity=types_pb2.PERIOD_GRANULARITY_MONTH, start_date=march(17))
    request = pb.GetForecastRequest(period=period, **kw)  # type: ignore[arg-type]
    resp = await p.call("GetForecast", request, user=user, tenant=tenant)
    got: forecast_pb2.Forecast = resp.forecast
    return got


def cats(t: forecast_pb2.ForecastTotals) -> dict[str, tuple[int, int, int]]:
    return {
        types_pb2.ForecastCategory.Name(c.category).removeprefix("FORECAST_CATEGORY_"): (
            c.amount.amount_minor,
            c.weighted_amount.amount_minor,
            c.deal_count,
        )
        for c in t.categories
    }


async def test_the_company_forecast_is_the_hand_computed_sum(pipeline: Pipeline) -> None:
    await seed(pipeline)
    fc_ = await forecast(pipeline)
    assert (fc_.period.start_date.day, fc_.period.end_date.month, fc_.period.end_date.day) == (1, 3, 31)
    t = fc_.totals
    assert t.weighted_amount.amount_minor == 100_000 + 200_000 + 50_000  # 10 % of A1, A2, A3
    assert (t.open_deal_count, t.won_amount.amount_minor, t.won_deal_count) == (3, 400_000, 1)
    assert cats(t) == {
        "PIPELINE": (1_000_000, 100_000, 1),
        "BEST_CASE": (500_000, 50_000, 1),
        "COMMIT": (2_000_000, 200_000, 1),
        "CLOSED": (400_000, 400_000, 1),
        "OMITTED": (100_000, 10_000, 1),
    }
    assert fc_.group_by == types_pb2.ORG_LEVEL_REGION
    assert [(r.key, r.totals.weighted_amount.amount_minor) for r in fc_.rows] == [("east", 350_000)]

    teams = await forecast(pipeline, scope=types_pb2.OrgScope(org_path="east"))
    assert [
        (r.key, r.totals.weighted_amount.amount_minor, r.totals.won_amount.amount_minor) for r in teams.rows
    ] == [
        ("east/team-a", 350_000, 0),
        ("east/team-b", 0, 400_000),
    ]
    reps = await forecast(pipeline, group_by=types_pb2.ORG_LEVEL_REP)
    assert [(r.key, r.totals.weighted_amount.amount_minor) for r in reps.rows] == [
        ("rep-a1", 300_000),
        ("rep-a2", 50_000),
        ("rep-b1", 0),
        ("rep-b2", 0),
    ]


async def test_a_move_changes_the_forecast_by_amount_times_probability(pipeline: Pipeline) -> None:
    await seed(pipeline)
    before = (await forecast(pipeline)).totals.weighted_amount.amount_minor
    upd = deal_pb2.Deal(deal_id="A1", next_step="demo")
    await pipeline.call(
        "UpdateDeal", pb.UpdateDealRequest(deal=upd, update_mask=mask("next_step")), user="rep-a1"
    )
    ev = deal_pb2.DealEvidence(
        evidence_id="mm", evidence_type_id="meeting_minutes", attachment=AttachmentRef(uri="s3://m")
    )
    await pipeline.call(
        "CreateDealEvidence", pb.CreateDealEvidenceRequest(deal_id="A1", evidence=ev), user="rep-a1"
    )
    await pipeline.call(
        "MoveStage", pb.MoveStageRequest(deal_id="A1", to_stage_id="needs_confirmed"), user="rep-a1"
    )
    after = (await forecast(pipeline)).totals.weighted_amount.amount_minor
    assert after - before == 1_000_000 * (30 - 10) // 100


async def test_the_forecast_stays_in_the_callers_scope(pipeline: Pipeline) -> None:
    await seed(pipeline)
    mine = await forecast(pipeline, user="sup-a")
    assert mine.totals.weighted_amount.amount_minor == 350_000 and mine.totals.won_deal_count == 0
    rep = await forecast(pipeline, user="rep-a1", group_by=types_pb2.ORG_LEVEL_REP)
    assert [(r.key, r.totals.weighted_amount.amount_minor) for r in rep.rows] == [("rep-a1", 300_000)]
    await refused(
        pipeline.call(
            "GetForecast",
            pb.GetForecastRequest(
                period=types_pb2.SalesPeriod(
                    granularity=types_pb2.PERIOD_GRANULARITY_MONTH, start_date=march(1)
                ),
                scope=types_pb2.OrgScope(org_path="east/team-b"),
            ),
            user="sup-a",
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    elsewhere = await forecast(pipeline, user="admin", tenant="acme")
    assert elsewhere.totals.weighted_amount.amount_minor == 0 and not elsewhere.rows


@pytest.mark.parametrize(
    ("granularity", "day", "bounds"),
    [
        (fc.Granularity.WEEK, date(2026, 12, 6), (date(2026, 11, 30), date(2026, 12, 6))),
        (fc.Granularity.MONTH, date(2028, 2, 10), (date(2028, 2, 1), date(2028, 2, 29))),
        (fc.Granularity.QUARTER, date(2026, 5, 31), (date(2026, 4, 1), date(2026, 6, 30))),
        (fc.Granularity.QUARTER, date(2026, 12, 31), (date(2026, 10, 1), date(2026, 12, 31))),
        (fc.Granularity.YEAR, date(2026, 7, 4), (date(2026, 1, 1), date(2026, 12, 31))),
    ],
)
def test_period_bounds(granularity: fc.Granularity, day: date, bounds: tuple[date, date]) -> None:
    assert fc.period_bounds(granularity, day) == bounds


def test_frozen_commit_counts_as_best_case_and_omitted_stays_out_of_weighted() -> None:
    rows = [
        fc.Aggregate("r1", "east/t", "OPEN", True, "COMMIT", 1000, 500, 1),
        fc.Aggregate("r1", "east/t", "OPEN", False, "OMITTED", 800, 80, 1),
        fc.Aggregate("r2", "west/t", "WON", False, "CLOSED", 300, 300, 2),
    ]
    total, by_region = fc.fold(rows, fc.Level.REGION)
    assert (total.weighted, total.frozen_amount, total.frozen_count, total.open_count) == (500, 1000, 1, 1)
    assert set(total.categories) == {"BEST_CASE", "OMITTED", "CLOSED"}
    assert [(r.key, r.totals.weighted, r.totals.won_amount) for r in by_region] == [
        ("east", 500, 0),
        ("west", 0, 300),
    ]
    _, company = fc.fold(rows, fc.Level.COMPANY)
    assert [r.key for r in company] == [""]
    assert fc.level_below("", False) is fc.Level.REGION and fc.level_below("east/sh/t", False) is fc.Level.REP
    assert fc.group_key(fc.Level.TEAM, "r1", "east/sh/team-a/x") == ("east/sh/team-a", "east/sh/team-a")


def test_a_reps_row_shows_the_greatest_org_path_whatever_the_row_order() -> None:
    rows = [
        fc.Aggregate("r1", "east/a", "OPEN", False, "COMMIT", 100, 50, 1),
        fc.Aggregate("r1", "west/b", "OPEN", True, "COMMIT", 200, 100, 1),
    ]
    for order in (rows, rows[::-1]):  # SQL rows come in no set order
        _, by_rep = fc.fold(order, fc.Level.REP)
        assert [(r.key, r.org_path) for r in by_rep] == [("r1", "west/b")]


async def test_the_sql_org_prefix_cuts_paths_like_the_domain(pipeline: Pipeline) -> None:
    """GetForecast groups at the level in SQL: the cut must be the domain's, on either database, and
    each level its own statement (one engine, so a statement cached for one depth cannot serve another)."""
    paths = ["east", "east/team-a", "east/ningbo/team-b", "west/x/y/z", "a-b.c/d_e"]
    for level in (fc.Level.TEAM, fc.Level.REGION, fc.Level.CITY, fc.Level.TEAM):
        stmt = select(*(org_prefix(literal(p), level.value) for p in paths))
        async with pipeline.db.engine.connect() as conn:
            got = list((await conn.execute(stmt)).one())
        assert got == [fc.group_key(level, "", p)[1] for p in paths], level


async def test_the_scope_says_what_the_figures_cover(pipeline: Pipeline) -> None:
    """A non-admin's default forecast is scoped, and its scope says so (not the empty, company-wide
    scope asked for): the supervisor's team, the director's region, the rep's own deals."""
    await seed(pipeline)
    sup = await forecast(pipeline, user="sup-a")
    assert sup.totals.weighted_amount.amount_minor == 350_000
    assert (sup.scope.org_path, list(sup.scope.user_ids)) == ("east/team-a", [])
    assert sup.group_by == types_pb2.ORG_LEVEL_REP and [r.key for r in sup.rows] == ["rep-a1", "rep-a2"]
    director = await forecast(pipeline, user="director-east")
    assert (director.scope.org_path, list(director.scope.user_ids)) == ("east", [])
    rep = await forecast(pipeline, user="rep-a1")
    assert list(rep.scope.user_ids) == ["rep-a1"] and rep.totals.weighted_amount.amount_minor == 300_000
    admin = await forecast(pipeline)
    assert (admin.scope.org_path, list(admin.scope.user_ids)) == ("", [])


async def test_the_sums_at_a_level_fold_as_the_per_owner_sums(pipeline: Pipeline) -> None:
    """at_level sums the frozen flag apart (FILTER) instead of grouping on it: at every level its
    aggregates fold to the same totals and rows as the finest grouping (by_owner), with a group
    holding frozen and not frozen deals of one category, a frozen COMMIT, and a group all frozen."""
    await seed(pipeline)
    await create(pipeline, new_deal("A5", amount=250_000, expected_close_date=march(12)), user="rep-a1")
    async with pipeline.db.engine.begin() as conn:
        await conn.execute(update(DealRow).where(DealRow.deal_id.in_(("A2", "A3", "A5"))).values(frozen=True))
    start, end = fc.period_bounds(fc.Granularity.MONTH, date(YEAR, 3, 17))
    async with transactions(pipeline.db).read("demo") as uow:
        sums = ForecastSums(uow)
        fine = await sums.by_owner([], start, end)
        assert any(a.frozen for a in fine) and any(not a.frozen and a.owner == "rep-a1" for a in fine)
        for level in fc.Level:
            assert fc.fold(await sums.at_level([], start, end, level), level) == fc.fold(fine, level), level


def test_the_scope_total_is_every_aggregate_added_once() -> None:
    """fold adds each aggregate to its group and merges the groups into the scope's totals: the same
    as adding every aggregate to the scope (every summed field of Totals is non-zero here, so a field
    merge forgot shows)."""
    rows = [
        fc.Aggregate("r1", "east/a", "OPEN", True, "COMMIT", 1000, 500, 1),
        fc.Aggregate("r1", "east/a", "OPEN", False, "PIPELINE", 700, 70, 3),
        fc.Aggregate("r2", "east/b", "OPEN", False, "OMITTED", 800, 80, 1),
        fc.Aggregate("r2", "east/b", "WON", False, "CLOSED", 300, 300, 2),
        fc.Aggregate("r3", "west/c", "OPEN", True, "PIPELINE", 90, 9, 4),
    ]
    one_by_one = fc.Totals()
    for a in rows:
        one_by_one.add(a)
    summed = [f.name for f in dataclasses.fields(fc.Totals) if f.type in ("int", int)]
    assert summed and all(getattr(one_by_one, name) for name in summed)
    for level in fc.Level:
        assert fc.fold(rows, level)[0] == one_by_one, level
