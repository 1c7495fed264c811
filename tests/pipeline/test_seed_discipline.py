"""The demo history's discipline and health (seed_discipline.py): run with the rest of the history at
a fixed clock, the service's own rules freeze the stale deals, flag the ones dwelling past their
stage's limit, and the weekly health runs leave each team a baseline and the anomalies it flags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from deploy.local.demo import demo_user
from salesops.pipeline.v1 import deal_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import seed, seed_history
from tests.pipeline.conftest import Pipeline

NOW = datetime(2025, 7, 20, 9, tzinfo=UTC)  # a Sunday: the last weekly deadline was Friday the 18th
USERS = [demo_user(u) for u in ("admin", "director-east", "sup-a", "rep-a1", "rep-a2")]


async def deals(p: Pipeline, **filter: bool) -> dict[str, object]:
    open_only = pb.DealFilter(statuses=[deal_pb2.DEAL_STATUS_OPEN], **filter)  # type: ignore[arg-type]
    req = pb.ListDealsRequest(filter=open_only, page_size=100)
    got = await p.call("ListDeals", req, user="director-east")
    return {d.deal_id: d for d in got.deals}


@pytest.mark.slow
@pytest.mark.timeout(900)  # six months of history, step by step: minutes on PostgreSQL at load 30+
async def test_history_leaves_frozen_dwelling_deals_and_anomalies(pipeline: Pipeline) -> None:
    for prof in seed.profiles(USERS):
        req = pb.UpdateMemberProfileRequest(member_profile=prof, update_mask=FieldMask(), allow_missing=True)
        await pipeline.call("UpdateMemberProfile", req)
    assert await seed_history.seed_history(pipeline.db, "demo", USERS, NOW) > 100
    frozen = await deals(pipeline, frozen=True)
    dwelling = await deals(pipeline, dwell_exceeded=True)
    # rep-a1 (index 0) left its deal alone four weeks: frozen by the weekly rule, over the stage limit.
    assert "demo-stale-rep-a1" in frozen and "demo-stale-rep-a1" in dwelling
    # rep-a2 updated its deal every week (never frozen) but it has sat in one stage for five weeks.
    assert "demo-slow-rep-a2" in dwelling and "demo-slow-rep-a2" not in frozen
    stale = frozen["demo-stale-rep-a1"]
    assert stale.frozen and stale.frozen_time.ToDatetime(tzinfo=UTC) <= NOW  # type: ignore[attr-defined]
    slow = dwelling["demo-slow-rep-a2"]
    assert slow.stage_id == "solution_confirmed" and slow.dwell.exceeded  # type: ignore[attr-defined]
    # The weekly runs stored every past week; what stood out of a team's +/- 2 sigma band is flagged.
    since = NOW - timedelta(weeks=27)
    listing = pb.ListProcessAnomaliesRequest(page_size=100)
    listing.detect_time_after.FromDatetime(since)
    anomalies = (await pipeline.call("ListProcessAnomalies", listing, user="director-east")).anomalies
    assert anomalies, "the history's weekly runs flagged nothing"
    for a in anomalies:
        v = a.value
        assert v.anomalous and abs(v.value - v.baseline_mean) > 2 * v.baseline_stddev > 0
        assert v.baseline_periods >= 4 and a.org_path == "east/team-a"
    report = (await pipeline.call("GetProcessHealth", pb.GetProcessHealthRequest(), user="sup-a")).report
    assert any(m.baseline_periods >= 4 for m in report.metrics)
