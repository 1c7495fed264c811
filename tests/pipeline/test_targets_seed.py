"""The demo targets: three quarters of company -> region -> team -> rep with attrition, signed,
this week calibrated; a second run changes nothing."""

from __future__ import annotations

from datetime import date
from typing import cast

import pytest

from deploy.local.demo import DEMO_USERS
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import pipeline_service_pb2_grpc, target_pb2, types_pb2
from services.pipeline import seed_targets
from tests.pipeline.conftest import Pipeline, token
from tests.pipeline.test_targets import profiles


def md(user: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token(user)}"),)


async def all_targets(p: Pipeline) -> list[target_pb2.Target]:
    resp = await p.call("ListTargets", pb.ListTargetsRequest(page_size=500))
    return list(resp.targets)


def test_quarters_are_the_current_and_two_before() -> None:
    assert seed_targets.quarters(date(2026, 2, 10)) == [date(2025, 7, 1), date(2025, 10, 1), date(2026, 1, 1)]


async def test_demo_targets_cascade_with_attrition_and_are_idempotent(pipeline: Pipeline) -> None:
    await profiles(pipeline)
    today = date.today()
    stub = cast("pipeline_service_pb2_grpc.PipelineServiceAsyncStub", pipeline.stub)  # the aio channel's stub
    await seed_targets.seed(stub, md, DEMO_USERS, today)
    first = await all_targets(pipeline)
    await seed_targets.seed(stub, md, DEMO_USERS, today)
    again = await all_targets(pipeline)
    assert [(t.target_id, t.etag) for t in again] == [(t.target_id, t.etag) for t in first]
    assert len(again) == 3 * (1 + 1 + 2 + 8)
    unsigned = [t.user_id for t in again if t.status != target_pb2.TARGET_STATUS_COMMITTED]
    assert unsigned == ["rep-b4"]  # this quarter's last rep has not signed yet

    period = types_pb2.SalesPeriod(
        granularity=types_pb2.PERIOD_GRANULARITY_QUARTER, start_date=again[0].period.start_date
    )
    cascade = (await pipeline.call("GetTargetCascade", pb.GetTargetCascadeRequest(period=period))).cascade
    assert [(lv.committed_amount.amount_minor, round(lv.retained_ratio, 2)) for lv in cascade.levels] == [
        (1_000_000_000, 1.0),
        (920_000_000, 0.92),
        (850_000_000, 0.85),
        (760_000_000, 0.76),
    ]
    assert cascade.root.attrition_ratio == pytest.approx(0.08)
    summary = await pipeline.call("SummarizeDeviationReasons", pb.SummarizeDeviationReasonsRequest())
    assert (summary.calibration_count, summary.deviation_count) == (8, 6)
    # The demo pipeline's forecast for the quarter has its targets beside it.
    fc = (await pipeline.call("GetForecast", pb.GetForecastRequest(period=period))).forecast
    assert fc.totals.target_amount.amount_minor == 1_000_000_000
    assert fc.totals.coverage_state in (
        target_pb2.COVERAGE_STATE_MEASURED,
        target_pb2.COVERAGE_STATE_TARGET_REACHED,
    )
