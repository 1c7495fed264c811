"""Bias over closed periods: the arithmetic on a hand-worked history, and ListForecastBias over the
demo history (six backdated months made through the use cases) on real gRPC.

Worked by hand, one rep over four closed months (F = locked call, A = won):

    month   F     A     F - A   |F - A|
    1       110   100    10      10
    2       120   100    20      20
    3       105   100     5       5
    4       125   100    25      25
    sums    460   400    60      60

    bias = sum(F - A) / sum A = 60 / 400 = 0.15 (over-calling, beyond the 10 % threshold)
    MAD = 60 / 4 = 15; tracking signal = sum(F - A) / MAD = 60 / 15 = 4.0
    four periods and |0.15| > 0.10: flagged for coaching.
"""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from deploy.local.demo import demo_user
from salesops.pipeline.v1 import forecast_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import seed, seed_history
from services.pipeline.domain import accuracy as acc
from tests.pipeline.conftest import Pipeline

HAND = [(110, 100), (120, 100), (105, 100), (125, 100)]


def test_bias_and_tracking_signal_of_the_worked_history() -> None:
    b = acc.bias(HAND, 0.10, 3)
    assert b.ratio == pytest.approx(0.15) and b.tracking_signal == pytest.approx(4.0)
    assert b.tendency is acc.Tendency.OVER_FORECASTING and b.coaching_flag
    three = acc.bias(HAND[:3], 0.10, 3)  # 35 / 300: over, but three periods do not flag
    assert three.tendency is acc.Tendency.OVER_FORECASTING and not three.coaching_flag
    under = acc.bias([(85, 100), (80, 100), (90, 100), (95, 100)], 0.10, 3)  # -50 / 400 = -0.125
    assert under.ratio == pytest.approx(-0.125) and under.tendency is acc.Tendency.UNDER_FORECASTING
    assert under.coaching_flag and under.tracking_signal == pytest.approx(-4.0)
    edge = acc.bias([(90, 100)] * 4, 0.10, 3)  # exactly -10 %: not beyond the threshold
    assert edge.tendency is acc.Tendency.BALANCED and not edge.coaching_flag
    nothing = acc.bias([(50, 0)] * 4, 0.10, 3)
    assert nothing.tendency is acc.Tendency.INSUFFICIENT_DATA and not nothing.coaching_flag
    assert acc.bias(HAND[:2], 0.10, 3).tendency is acc.Tendency.INSUFFICIENT_DATA


def test_lock_points_of_a_month_and_a_quarter() -> None:
    from datetime import date

    march = acc.lock_dates(date(2025, 3, 1), date(2025, 3, 31))
    assert [d.day for d in march.values()] == [8, 16, 18, 25]
    q = acc.lock_dates(date(2025, 1, 1), date(2025, 3, 31))
    assert [d.isoformat() for d in q.values()] == ["2025-01-08", "2025-02-15", "2025-03-18", "2025-03-25"]
    assert acc.due_lock_points(date(2025, 3, 1), date(2025, 3, 31), date(2025, 3, 17)) == [
        acc.LockPoint.WEEK_1,
        acc.LockPoint.MID_PERIOD,
    ]
    assert acc.due_lock_points(date(2025, 3, 1), date(2025, 3, 31), date(2025, 4, 1)) == []


USERS = [demo_user(u) for u in ("admin", "sup-a", "rep-a1", "rep-a2")]


@pytest.fixture
async def history(pipeline: Pipeline) -> Pipeline:
    """Six months (January to June 2025) for two reps: rep-a1 calls 30 % over (sup-a tempers every
    other month to 5 % over), rep-a2 about 2 % over."""
    for p in seed.profiles(USERS):
        req = pb.UpdateMemberProfileRequest(member_profile=p, update_mask=FieldMask(), allow_missing=True)
        await pipeline.call("UpdateMemberProfile", req)
    ran = await seed_history.seed_history(pipeline.db, "demo", USERS, datetime(2025, 7, 20, tzinfo=UTC))
    assert ran > 100
    assert await seed_history.seed_history(pipeline.db, "demo", USERS, datetime(2025, 7, 20, tzinfo=UTC)) == 0
    return pipeline


async def bias(pipeline: Pipeline, user: str = "admin", **kw: object) -> pb.ListForecastBiasResponse:
    req = pb.ListForecastBiasRequest(level=types_pb2.ORG_LEVEL_REP, **kw)  # type: ignore[arg-type]
    out: pb.ListForecastBiasResponse = await pipeline.call("ListForecastBias", req, user=user)
    return out


@pytest.mark.slow
async def test_demo_history_shows_bias_and_accuracy(history: Pipeline) -> None:
    resp = await bias(history, period_count=6)
    by = {b.key: b for b in resp.biases}
    a1, a2 = by["rep-a1"], by["rep-a2"]
    assert [p.period.start_date.month for p in a1.history] == [1, 2, 3, 4, 5, 6]
    assert a1.tendency == forecast_pb2.BIAS_TENDENCY_OVER_FORECASTING and a1.coaching_flag
    assert 0.10 < a1.mean_bias_ratio < 0.30 and a1.tracking_signal > 4
    assert a2.tendency == forecast_pb2.BIAS_TENDENCY_BALANCED and not a2.coaching_flag
    assert abs(a2.mean_bias_ratio) < 0.05 and a1.display_name == "Rep A1"
    # The mean is sum(F - A) / sum(A) over the history it shows.
    f = sum(p.forecast_amount.amount_minor for p in a1.history)
    a = sum(p.actual_amount.amount_minor for p in a1.history)
    assert a1.mean_bias_ratio == pytest.approx((f - a) / a)
    flagged = await bias(history, tendency=forecast_pb2.BIAS_TENDENCY_OVER_FORECASTING)
    assert [b.key for b in flagged.biases] == ["rep-a1"] and len(flagged.biases[0].history) == 4
    first = await bias(history, page_size=1)
    second = await bias(history, page_size=1, page_token=first.next_page_token)
    assert [b.key for b in [*first.biases, *second.biases]] == [
        "rep-a1",
        "rep-a2",
    ] and not second.next_page_token
    assert [b.key for b in (await bias(history, "rep-a2")).biases] == ["rep-a2"]
    # May's accuracy against its last-week lock: sup-a's adjustment of rep-a1 added value.
    may = types_pb2.SalesPeriod(granularity=types_pb2.PERIOD_GRANULARITY_MONTH)
    may.start_date.year, may.start_date.month, may.start_date.day = 2025, 5, 1
    req = pb.GetForecastAccuracyRequest(period=may, group_by=types_pb2.ORG_LEVEL_REP)
    got = await history.call("GetForecastAccuracy", req, user="sup-a")
    assert got.total.period_closed and got.total.lock_point == forecast_pb2.LOCK_POINT_LAST_WEEK
    assert got.total.actual_amount.amount_minor > 0 and 0 < got.total.wape < 0.5
    assert got.total.brier_sample_size == 6 and 0 < got.total.commit_conversion_ratio < 1
    assert got.total.adjustment_value > 0
    # The weekly run's quarter half ran too: Q2 is locked at its own points (no quarter calls: the
    # system commit stands in for them).
    q2 = types_pb2.SalesPeriod(granularity=types_pb2.PERIOD_GRANULARITY_QUARTER, start_date=may.start_date)
    quarter = await history.call(
        "GetForecastAccuracy", pb.GetForecastAccuracyRequest(period=q2), user="admin"
    )
    assert quarter.total.lock_point == forecast_pb2.LOCK_POINT_LAST_WEEK
    assert quarter.total.forecast_date.month == 6 and quarter.total.forecast_date.day == 24
    assert quarter.total.calls_missing == 2 and quarter.total.actual_amount.amount_minor > 0
    # Flows between May's first lock and its closing snapshot: raised, pushed, won and lost deals.
    listed = await history.call(
        "ListForecastSnapshots", pb.ListForecastSnapshotsRequest(period=may, page_size=10), user="admin"
    )
    ids = [s.snapshot_id for s in listed.snapshots]
    assert len(ids) == 5  # four locks and the close, newest first

    async def flows(earlier: str, later: str) -> dict[int, int]:
        req = pb.CompareForecastSnapshotsRequest(from_snapshot_id=earlier, to_snapshot_id=later)
        got = (await history.call("CompareForecastSnapshots", req, user="admin")).flows
        return {t.kind: t.deal_count for t in got.totals}

    # Week 1 -> mid-period: each rep's best-case deal raised, April's pushed deal won on the 10th.
    assert await flows(ids[-1], ids[-2]) == {
        forecast_pb2.FLOW_KIND_AMOUNT_UP: 2,
        forecast_pb2.FLOW_KIND_WON: 2,
    }
    # Week 1 -> close: each rep's pushed deal out, the lost one lost, the other three won.
    assert await flows(ids[-1], ids[0]) == {
        forecast_pb2.FLOW_KIND_PUSHED_OUT: 2,
        forecast_pb2.FLOW_KIND_LOST: 2,
        forecast_pb2.FLOW_KIND_WON: 6,
    }


async def test_bias_requests_are_checked(pipeline: Pipeline) -> None:
    history = pipeline
    for req in (
        pb.ListForecastBiasRequest(),
        pb.ListForecastBiasRequest(level=types_pb2.ORG_LEVEL_REP, period_count=13),
        pb.ListForecastBiasRequest(level=types_pb2.ORG_LEVEL_REP, page_token="forged"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await history.call("ListForecastBias", req)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    other = await history.call(
        "ListForecastBias", pb.ListForecastBiasRequest(level=types_pb2.ORG_LEVEL_REP), tenant="acme"
    )
    assert list(other.biases) == []
