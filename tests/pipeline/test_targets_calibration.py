"""Weekly target calibrations with a deviation reason type, and SummarizeDeviationReasons counting
them per type and level (in SQL) within the caller's scope."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.type import date_pb2  # type: ignore[import-untyped]
from sqlalchemy import func, select

from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import target_pb2, types_pb2
from services.pipeline.store import outbox
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import refused
from tests.pipeline.test_targets import COMPANY, REGION, REP, TEAM, cny, profiles, put, target

TODAY = datetime.now(zoneinfo.ZoneInfo("Asia/Shanghai")).date()  # the demo tenant's calendar
MONDAY = TODAY - timedelta(days=TODAY.weekday())
YEAR = types_pb2.SalesPeriod(
    granularity=types_pb2.PERIOD_GRANULARITY_YEAR, start_date=date_pb2.Date(year=MONDAY.year, month=6, day=1)
)
A, B, C, OK, OTHER = (
    target_pb2.DEVIATION_REASON_TYPE_DECISION_CHAIN_CHANGED,
    target_pb2.DEVIATION_REASON_TYPE_COMPETITOR_PRICE_CUT,
    target_pb2.DEVIATION_REASON_TYPE_DELIVERY_LATE,
    target_pb2.DEVIATION_REASON_TYPE_NO_DEVIATION,
    target_pb2.DEVIATION_REASON_TYPE_OTHER,
)


PRICE_CUT = "competitor cut its price on the tender"


def day(d: date) -> date_pb2.Date:
    return date_pb2.Date(year=d.year, month=d.month, day=d.day)


def calibration(
    cid: str,
    target_id: str,
    forecast: int,
    reason: target_pb2.DeviationReasonType.ValueType,
    week: date | None = MONDAY,
    **kw: Any,
) -> target_pb2.TargetCalibration:
    msg = target_pb2.TargetCalibration(
        calibration_id=cid, target_id=target_id, forecast_amount=cny(forecast), reason_type=reason, **kw
    )  # type: ignore[arg-type]
    if week is not None:
        msg.week_start_date.CopyFrom(day(week))
    return msg


async def calibrate(p: Pipeline, c: target_pb2.TargetCalibration, user: str) -> target_pb2.TargetCalibration:
    req = pb.CreateTargetCalibrationRequest(calibration=c)
    got: target_pb2.TargetCalibration = (await p.call("CreateTargetCalibration", req, user=user)).calibration
    return got


async def fixture(p: Pipeline) -> None:
    await profiles(p)
    await put(p, target("co", COMPANY, 1_000_000, period=YEAR))
    await put(p, target("east", REGION, 900_000, org="east", period=YEAR))
    await put(p, target("ta", TEAM, 400_000, org="east/team-a", period=YEAR), user="director-east")
    await put(p, target("tb", TEAM, 400_000, org="east/team-b", period=YEAR), user="director-east")
    for rep, boss in (("a1", "sup-a"), ("a2", "sup-a"), ("b1", "sup-b"), ("b2", "sup-b")):
        await put(p, target(rep, REP, 100_000, user=f"rep-{rep}", period=YEAR), user=boss)
    first = await calibrate(
        p, calibration("c1", "a1", 80_000, A, week=None, reason_detail="new CIO at the customer"), "rep-a1"
    )
    assert first.week_start_date == day(MONDAY)  # default: this week in the tenant's zone
    await calibrate(p, calibration("c2", "a2", 70_000, B, deal_ids=["D-7"], reason_detail=PRICE_CUT), "sup-a")
    calibrated = calibration(
        "c3",
        "b1",
        90_000,
        B,
        corrective_action="bundle services",
        reason_detail="Competitor price 15 % lower",
    )
    await calibrate(p, calibrated, "sup-b")
    await calibrate(p, calibration("c4", "b2", 100_000, OK), "rep-b2")
    await calibrate(p, calibration("c5", "ta", 350_000, C), "director-east")


def counts(reasons: object) -> list[tuple[str, int, float, int]]:
    return [
        (
            target_pb2.DeviationReasonType.Name(r.reason_type).removeprefix("DEVIATION_REASON_TYPE_"),
            r.count,
            round(r.share, 4),
            r.gap_amount.amount_minor,
        )
        for r in reasons  # type: ignore[attr-defined]
    ]


async def summary(
    p: Pipeline, user: str = "admin", tenant: str = "demo", **kw: object
) -> pb.SummarizeDeviationReasonsResponse:
    req = pb.SummarizeDeviationReasonsRequest(**kw)  # type: ignore[arg-type]
    got: pb.SummarizeDeviationReasonsResponse = await p.call(
        "SummarizeDeviationReasons", req, user=user, tenant=tenant
    )
    return got


async def test_reasons_are_counted_per_type_and_level(pipeline: Pipeline) -> None:
    await fixture(pipeline)
    s = await summary(pipeline)
    assert (s.calibration_count, s.deviation_count) == (5, 4)
    assert counts(s.reasons) == [
        ("COMPETITOR_PRICE_CUT", 2, 0.5, -40_000),
        ("DECISION_CHAIN_CHANGED", 1, 0.25, -20_000),
        ("DELIVERY_LATE", 1, 0.25, -50_000),
    ]
    assert [
        (types_pb2.OrgLevel.Name(lv.level), lv.calibration_count, lv.deviation_count) for lv in s.levels
    ] == [
        ("ORG_LEVEL_TEAM", 1, 1),
        ("ORG_LEVEL_REP", 4, 3),
    ]
    assert counts(s.levels[1].reasons) == [
        ("COMPETITOR_PRICE_CUT", 2, 0.6667, -40_000),
        ("DECISION_CHAIN_CHANGED", 1, 0.3333, -20_000),
    ]
    clustered = await summary(pipeline, include_clusters=True)
    assert [
        (c.label, c.count, list(c.sample_calibration_ids), list(c.reason_types)) for c in clustered.clusters
    ] == [("competitor price", 2, ["c2", "c3"], [B])]
    assert not s.clusters  # only when asked
    team_a = await summary(pipeline, user="sup-a")
    assert (team_a.calibration_count, [c[0] for c in counts(team_a.reasons)]) == (
        3,
        ["COMPETITOR_PRICE_CUT", "DECISION_CHAIN_CHANGED", "DELIVERY_LATE"],
    )
    assert (await summary(pipeline, user="rep-a1")).calibration_count == 1
    team_b = await summary(pipeline, scope=types_pb2.OrgScope(org_path="east/team-b"))
    assert (team_b.calibration_count, team_b.deviation_count) == (2, 1)
    earlier = await summary(
        pipeline, week_from=day(MONDAY - timedelta(weeks=3)), week_to=day(MONDAY - timedelta(weeks=1))
    )
    assert earlier.calibration_count == 0
    assert (await summary(pipeline, tenant="acme")).calibration_count == 0
    await refused(
        pipeline.call(
            "SummarizeDeviationReasons",
            pb.SummarizeDeviationReasonsRequest(scope=types_pb2.OrgScope(org_path="east/team-b")),
            user="sup-a",
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    async with pipeline.db.engine.connect() as conn:
        emitted = await conn.scalar(
            select(func.count()).select_from(outbox).where(outbox.c.type == "pipeline.TargetCalibrated")
        )
    assert emitted == 5


async def test_a_calibration_is_validated_once_per_target_and_week(pipeline: Pipeline) -> None:
    await fixture(pipeline)
    c2 = await calibrate(
        pipeline, calibration("c2", "a2", 70_000, B, deal_ids=["D-7"], reason_detail=PRICE_CUT), "sup-a"
    )  # a replay
    assert (c2.gap_amount.amount_minor, c2.target_amount.amount_minor, c2.user_id, c2.org_path) == (
        -30_000,
        100_000,
        "rep-a2",
        "east/team-a",
    )
    assert c2.level == REP and c2.period.start_date == date_pb2.Date(year=MONDAY.year, month=1, day=1)
    for cid, user in (("c2", "sup-a"), ("c9", "rep-a2")):  # other content for an id; a second one this week
        await refused(
            pipeline.call(
                "CreateTargetCalibration",
                pb.CreateTargetCalibrationRequest(calibration=calibration(cid, "a2", 1, B)),
                user=user,
            ),
            grpc.StatusCode.ALREADY_EXISTS,
        )
    bad = [
        (calibration("x1", "a1", 1, OTHER, week=MONDAY - timedelta(weeks=1)), "calibration.reason_detail"),
        (
            calibration(
                "x2", "a1", 1, target_pb2.DEVIATION_REASON_TYPE_UNSPECIFIED, week=MONDAY - timedelta(weeks=1)
            ),
            "calibration.reason_type",
        ),
        (calibration("x3", "a1", 1, A, week=MONDAY + timedelta(days=1)), "calibration.week_start_date"),
        (calibration("x4", "a1", 1, A, week=MONDAY + timedelta(weeks=1)), "calibration.week_start_date"),
        (
            calibration(
                "x5",
                "a1",
                1,
                A,
                week=date(MONDAY.year - 1, 12, 1) - timedelta(days=date(MONDAY.year - 1, 12, 1).weekday()),
            ),
            "calibration.week_start_date",
        ),
        (
            target_pb2.TargetCalibration(
                calibration_id="x6",
                target_id="a1",
                reason_type=A,
                forecast_amount=Money(amount_minor=1, currency="USD"),
            ),
            "calibration.forecast_amount",
        ),
    ]
    for msg, field in bad:
        status = await refused(
            pipeline.call(
                "CreateTargetCalibration", pb.CreateTargetCalibrationRequest(calibration=msg), user="rep-a1"
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert field in str(status), (field, status)
    # Only who sees the target calibrates it; another tenant does not see it at all.
    for user, tenant in (("rep-a1", "demo"), ("sup-b", "demo"), ("admin", "acme")):
        await refused(
            pipeline.call(
                "CreateTargetCalibration",
                pb.CreateTargetCalibrationRequest(
                    calibration=calibration("y", "a2", 1, A, week=MONDAY - timedelta(weeks=1))
                ),
                user=user,
                tenant=tenant,
            ),
            grpc.StatusCode.NOT_FOUND,
        )


async def test_calibrations_are_listed_newest_first_within_scope(pipeline: Pipeline) -> None:
    await fixture(pipeline)
    await calibrate(pipeline, calibration("c0", "a1", 90_000, B, week=MONDAY - timedelta(weeks=1)), "rep-a1")

    async def listed(user: str = "admin", tenant: str = "demo", **kw: object) -> list[str]:
        req = pb.ListTargetCalibrationsRequest(filter=pb.TargetCalibrationFilter(**kw), page_size=2)  # type: ignore[arg-type]
        ids: list[str] = []
        while True:
            resp = await pipeline.call("ListTargetCalibrations", req, user=user, tenant=tenant)
            ids += [c.calibration_id for c in resp.calibrations]
            if not resp.next_page_token:
                return ids
            req.page_token = resp.next_page_token

    assert await listed() == ["c5", "c4", "c3", "c2", "c1", "c0"]
    assert await listed(user="rep-a1") == ["c1", "c0"]
    assert await listed(user="sup-a") == ["c5", "c2", "c1", "c0"]
    assert await listed(reason_types=[B]) == ["c3", "c2", "c0"]
    assert await listed(target_id="a1", week_to=day(MONDAY - timedelta(days=1))) == ["c0"]
    assert await listed(scope=types_pb2.OrgScope(user_ids=["rep-b2"])) == ["c4"]
    assert await listed(tenant="acme") == []
    detail = (
        await pipeline.call(
            "ListTargetCalibrations",
            pb.ListTargetCalibrationsRequest(filter=pb.TargetCalibrationFilter(target_id="a1")),
            user="rep-a1",
        )
    ).calibrations[0]
    assert (detail.reason_detail, detail.audit.created_by) == ("new CIO at the customer", "rep-a1")


@pytest.mark.parametrize("bad", [{"page_size": -1}])
async def test_bad_list_requests_are_refused(pipeline: Pipeline, bad: dict[str, int]) -> None:
    await refused(
        pipeline.call("ListTargetCalibrations", pb.ListTargetCalibrationsRequest(**bad)),  # type: ignore[arg-type]
        grpc.StatusCode.INVALID_ARGUMENT,
    )
