"""Process health over real gRPC (SQLite and PostgreSQL): every metric of a week against a hand-computed
fixture, the band of the team's own history, the weekly run flagging once, and who may see it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from kit.events import new_envelope, unpack_payload
from kit.events.envelope import parse_envelope
from salesops.common.v1.types_pb2 import AttachmentRef
from salesops.leads.v1 import events_pb2 as lead_events
from salesops.pipeline.v1 import (
    deal_pb2,
    events_pb2,
    process_health_pb2,
    settings_pb2,
    stage_model_pb2,
    types_pb2,
)
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import health
from services.pipeline.discipline_consumers import FIRST_RESPONSE, responses_handler
from services.pipeline.domain.discipline import week_start
from services.pipeline.store import outbox, transactions
from services.pipeline.store_discipline import HealthValueRow
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import create, new_deal, refused

SH = ZoneInfo("Asia/Shanghai")
TEAM = "east/team-a"
ph = process_health_pb2


def evidence(deal_id: str, evidence_id: str, kind: str) -> pb.CreateDealEvidenceRequest:
    ev = deal_pb2.DealEvidence(
        evidence_id=evidence_id, evidence_type_id=kind, attachment=AttachmentRef(uri=f"s3://d/{evidence_id}")
    )
    return pb.CreateDealEvidenceRequest(deal_id=deal_id, evidence=ev)


async def outbox_events(p: Pipeline, event_type: str) -> list[Any]:
    async with p.db.system_session() as s:
        rows = list(await s.scalars(select(outbox.c.envelope).where(outbox.c.type == event_type)))
    return [parse_envelope(r) for r in rows]


async def respond(p: Pipeline, lead_id: str, seconds: int, event_id: str) -> None:
    evt = lead_events.FirstResponseRecorded(responder_user_id="rep-a1")
    evt.lead.lead_id, evt.lead.team_path = lead_id, TEAM
    evt.business_time_to_respond.FromSeconds(seconds)
    evt.response_time.FromDatetime(datetime.now(UTC))
    env = new_envelope(FIRST_RESPONSE, "demo", evt, source="leads", event_id=event_id)
    handle = responses_handler(SimpleNamespace(db=p.db))  # type: ignore[arg-type]
    async with p.db.session("demo") as session:
        await handle(env, session)
        await session.commit()


async def build_week(p: Pipeline) -> None:
    """H1: refused, then passes into needs_confirmed, two quotes, won. H2: one quote, lost. H3: open."""
    profile = settings_pb2.MemberProfile(
        user_id="rep-a1", display_name="A1", org_path=TEAM, manager_user_id="sup-a", active=True
    )
    await p.call(
        "UpdateMemberProfile", pb.UpdateMemberProfileRequest(member_profile=profile, allow_missing=True)
    )
    for deal_id in ("H1", "H2", "H3"):
        await create(p, new_deal(deal_id))
    await refused(
        p.call("MoveStage", pb.MoveStageRequest(deal_id="H1", to_stage_id="needs_confirmed"), "rep-a1")
    )
    await p.call("CreateDealEvidence", evidence("H1", "m1", "meeting_minutes"), "rep-a1")
    await p.call("MoveStage", pb.MoveStageRequest(deal_id="H1", to_stage_id="needs_confirmed"), "rep-a1")
    for deal_id, ev in (("H1", "q1"), ("H1", "q2"), ("H2", "q3"), ("H1", "sc")):
        await p.call(
            "CreateDealEvidence",
            evidence(deal_id, ev, "signed_contract" if ev == "sc" else "quote"),
            "rep-a1",
        )
    await p.call("MarkWon", pb.MarkWonRequest(deal_id="H1"), "rep-a1")
    lost = pb.MarkLostRequest(deal_id="H2", category=stage_model_pb2.LOST_REASON_CATEGORY_PRICE)
    await p.call("MarkLost", lost, "rep-a1")
    await respond(p, "L1", 3600, "e1")
    await respond(p, "L2", 7200, "e2")
    await respond(p, "L2", 60, "e3")  # a second response event of the same lead: the first one counts


async def history(p: Pipeline, week: date, metric: str, values: list[float]) -> None:
    async with p.db.session("demo") as s:
        for i, v in enumerate(values, start=1):
            s.add(
                HealthValueRow(
                    org_path=TEAM,
                    week_start=week - timedelta(days=7 * i),
                    metric=metric,
                    stage_id="",
                    value=v,
                    sample_size=5,
                    computed_at=datetime.now(UTC),
                    tenant_id="demo",
                )
            )
        await s.commit()


def by_metric(report: ph.ProcessHealthReport) -> dict[tuple[str, str], ph.ProcessMetricValue]:
    return {
        (ph.ProcessMetric.Name(v.metric).removeprefix("PROCESS_METRIC_"), v.stage_id): v
        for v in report.metrics
    }


async def test_a_weeks_metrics_against_the_teams_own_history(pipeline: Pipeline) -> None:
    this_week = week_start(datetime.now(SH).date())
    await build_week(pipeline)
    await history(pipeline, this_week, "WIN_RATE", [0.2, 0.3] * 3)  # mean .25, sd .05: band .15-.35
    await history(pipeline, this_week, "GATE_REJECTION_RATE", [0.1, 0.2] * 3)  # band .05-.25
    await history(pipeline, this_week, "FROZEN_RATIO", [0.5, 0.6, 0.5])  # three weeks: too short to flag

    report = (
        await pipeline.call("GetProcessHealth", pb.GetProcessHealthRequest(org_path=TEAM), "sup-a")
    ).report
    m = by_metric(report)
    assert report.period.start_date.day == this_week.day
    assert (m["WIN_RATE", ""].value, m["WIN_RATE", ""].sample_size) == (0.5, 2)
    assert m["GATE_REJECTION_RATE", ""].value == pytest.approx(1 / 3)  # refused, passed, the won gate
    assert (m["NEGOTIATION_ROUNDS", ""].value, m["NEGOTIATION_ROUNDS", ""].sample_size) == (1.5, 2)
    assert (
        m["STAGE_CONVERSION", "initial_contact"].value,
        m["STAGE_CONVERSION", "initial_contact"].sample_size,
    ) == (
        0.5,
        2,
    )
    assert m["STAGE_CONVERSION", "needs_confirmed"].value == 1.0  # left by winning
    assert m["STAGE_DWELL", "initial_contact"].sample_size == 2
    assert (m["FROZEN_RATIO", ""].value, m["FROZEN_RATIO", ""].sample_size) == (0.0, 3)
    assert (m["LEAD_RESPONSE_TIME", ""].value, m["LEAD_RESPONSE_TIME", ""].sample_size) == (1.5, 2)
    assert (m["AVERAGE_DEAL_SIZE", ""].value, m["SALES_CYCLE_TIME", ""].sample_size) == (1_000_000, 1)
    assert m["SOLUTION_BUILD_TIME", ""].sample_size == 2
    for name in ("APPROVAL_TURNAROUND", "FORECAST_ERROR"):
        assert m[name, ""].unavailable and m[name, ""].note

    win = m["WIN_RATE", ""]
    assert win.baseline_periods == 6 and win.baseline_mean == pytest.approx(0.25)
    assert win.baseline_stddev == pytest.approx(0.05) and win.upper_bound == pytest.approx(0.35)
    assert win.anomalous and win.direction == ph.ANOMALY_DIRECTION_ABOVE and win.higher_is_better
    assert m["GATE_REJECTION_RATE", ""].anomalous
    frozen = m["FROZEN_RATIO", ""]
    assert frozen.baseline_periods == 3 and not frozen.anomalous
    assert report.anomaly_count == 2

    # The weekly run (Monday 00:30 tenant time) records both, once, and tells the supervisor.
    run_at = datetime.combine(this_week + timedelta(days=7), time(0, 31), tzinfo=SH).astimezone(UTC)
    tx = transactions(pipeline.db)
    assert await tx.run("demo", lambda uow: health.next_run(uow, run_at)) == run_at
    assert await tx.run("demo", lambda uow: health.run_due(uow, run_at)) == 1
    assert await tx.run("demo", lambda uow: health.run_due(uow, run_at + timedelta(hours=1))) == 0
    found = [
        unpack_payload(e, events_pb2.ProcessAnomalyDetected)
        for e in await outbox_events(pipeline, health.PROCESS_ANOMALY_DETECTED)
    ]
    assert sorted((e.org_path, e.manager_user_id, e.adverse) for e in found) == [
        (TEAM, "sup-a", False),
        (TEAM, "sup-a", True),
    ]

    since = Timestamp()
    since.FromDatetime(run_at - timedelta(days=1))
    req = pb.ListProcessAnomaliesRequest(detect_time_after=since)
    listed = (await pipeline.call("ListProcessAnomalies", req, "sup-a")).anomalies
    assert {ph.ProcessMetric.Name(a.value.metric) for a in listed} == {
        "PROCESS_METRIC_WIN_RATE",
        "PROCESS_METRIC_GATE_REJECTION_RATE",
    }
    adverse = pb.ListProcessAnomaliesRequest(detect_time_after=since, adverse_only=True)
    [gate] = (await pipeline.call("ListProcessAnomalies", adverse, "director-east")).anomalies
    assert gate.z_score == pytest.approx((1 / 3 - 0.15) / 0.05) and gate.manager_user_id == "sup-a"
    assert not (await pipeline.call("ListProcessAnomalies", req, "sup-b")).anomalies
    assert not (await pipeline.call("ListProcessAnomalies", req, "sup-a", tenant="acme")).anomalies


async def test_process_health_is_for_the_units_managers_and_admins(pipeline: Pipeline) -> None:
    ask = pb.GetProcessHealthRequest(org_path=TEAM)
    for user in ("rep-a1", "sup-b"):
        await refused(pipeline.call("GetProcessHealth", ask, user), grpc.StatusCode.PERMISSION_DENIED)
    await refused(
        pipeline.call("ListProcessAnomalies", pb.ListProcessAnomaliesRequest(), "rep-a1"),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    for user in ("sup-a", "director-east", "admin"):
        report = (await pipeline.call("GetProcessHealth", ask, user)).report
        assert report.org_path == TEAM and report.anomaly_count == 0
    monthly = pb.GetProcessHealthRequest(org_path=TEAM)
    monthly.period.granularity = types_pb2.PERIOD_GRANULARITY_MONTH
    await refused(pipeline.call("GetProcessHealth", monthly, "sup-a"), grpc.StatusCode.INVALID_ARGUMENT)
    bad = pb.ListProcessAnomaliesRequest(metrics=[999])  # type: ignore[list-item]
    await refused(pipeline.call("ListProcessAnomalies", bad, "sup-a"), grpc.StatusCode.INVALID_ARGUMENT)


async def test_forecast_error_is_the_wape_of_the_units_locked_calls_of_the_last_closed_period(
    pipeline: Pipeline,
) -> None:
    from services.pipeline.convert import date_proto
    from tests.pipeline.test_accuracy import build_march

    await build_march(transactions(pipeline.db))  # March 2025, worked by hand in test_accuracy
    ask = pb.GetProcessHealthRequest(org_path=TEAM)
    ask.period.start_date.CopyFrom(date_proto(date(2025, 4, 9)))
    m = by_metric((await pipeline.call("GetProcessHealth", ask, "sup-a")).report)
    error = m["FORECAST_ERROR", ""]
    assert not error.unavailable and error.value == pytest.approx(3 / 11)  # the reps' (50k + 10k) / 220k
    assert m["APPROVAL_TURNAROUND", ""].unavailable
    early = pb.GetProcessHealthRequest(org_path=TEAM)
    early.period.start_date.CopyFrom(date_proto(date(2025, 3, 12)))  # February had no locked call
    assert by_metric((await pipeline.call("GetProcessHealth", early, "sup-a")).report)[
        "FORECAST_ERROR", ""
    ].unavailable


async def seed_anomalies(p: Pipeline) -> None:
    """Six recorded anomalies with ties in detect time (the paging property lists them)."""
    from ulid import ULID

    from services.pipeline.repositories.health import Anomalies
    from services.pipeline.store_discipline import AnomalyRow

    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    metrics = [
        "WIN_RATE",
        "GATE_REJECTION_RATE",
        "FROZEN_RATIO",
        "STAGE_DWELL",
        "SALES_CYCLE_TIME",
        "WIN_RATE",
    ]

    async def work(uow: Any) -> None:
        for n, metric in enumerate(metrics):
            at = base + timedelta(hours=n % 3)
            week = date(2026, 1, 5) + timedelta(days=7 * n)
            value = ph.ProcessMetricValue(metric=ph.ProcessMetric.Value(f"PROCESS_METRIC_{metric}"), value=n)
            anomaly = ph.ProcessAnomaly(
                anomaly_id=str(ULID()), org_path=TEAM, value=value, adverse=n % 2 == 0
            )
            anomaly.detect_time.FromDatetime(at)
            row = AnomalyRow(
                anomaly_id=anomaly.anomaly_id,
                org_path=TEAM,
                week_start=week,
                metric=metric,
                stage_id="",
                adverse=anomaly.adverse,
                detected_at=at,
                body=anomaly.SerializeToString(),
            )
            await Anomalies(uow).add(row)

    await transactions(p.db).run("demo", work)


async def test_a_regions_band_comes_from_its_teams_weeks_weighted_by_sample(pipeline: Pipeline) -> None:
    """Weeks are stored per team; a region's report has a real band (its teams' weeks, each week the
    sample-weighted value of the region), not an empty baseline drawn as z = 0."""
    this_week = week_start(datetime.now(SH).date())
    await build_week(pipeline)
    async with pipeline.db.session("demo") as s:
        for i in range(1, 7):
            week = this_week - timedelta(days=7 * i)
            # team-a 0.2 over 1 closed deal, team-b 0.3 over 3: the region's week is 0.275 (not 0.25)
            for team, value, n in (("east/team-a", 0.2, 1), ("east/team-b", 0.3 if i % 2 else 0.2, 3)):
                s.add(
                    HealthValueRow(
                        org_path=team,
                        week_start=week,
                        metric="WIN_RATE",
                        stage_id="",
                        value=value,
                        sample_size=n,
                        computed_at=datetime.now(UTC),
                        tenant_id="demo",
                    )
                )
            s.add(
                HealthValueRow(
                    org_path="east/team-a",
                    week_start=week,
                    metric="FORECAST_ERROR",
                    stage_id="",
                    value=0.1 * i,
                    sample_size=2,
                    computed_at=datetime.now(UTC),
                    tenant_id="demo",
                )
            )
        await s.commit()
    report = (
        await pipeline.call("GetProcessHealth", pb.GetProcessHealthRequest(org_path="east"), "director-east")
    ).report
    win = by_metric(report)["WIN_RATE", ""]
    # Weeks alternate 0.275 (0.2x1 + 0.3x3) / 4 and 0.2: mean 0.2375, sd 0.0375.
    assert win.baseline_periods == 6 and win.baseline_mean == pytest.approx(0.2375)
    assert win.baseline_stddev == pytest.approx(0.0375)
    assert win.anomalous and win.value == 0.5  # this week's region value, far above its band
    # The director's default report is the region's, with the same band.
    default = (await pipeline.call("GetProcessHealth", pb.GetProcessHealthRequest(), "director-east")).report
    assert default.org_path == "east" and by_metric(default)["WIN_RATE", ""].baseline_periods == 6
    # A team keeps its own history as it is; WAPE does not add up over teams: no band above a team
    # rather than a made-up one.
    async with transactions(pipeline.db).read("demo") as uow:
        from services.pipeline.repositories.health import HealthSql

        region = await HealthSql(uow).baselines("east", this_week, 12)
        company = await HealthSql(uow).baselines("", this_week, 12)
        team = await HealthSql(uow).baselines("east/team-a", this_week, 12)
        team_b = await HealthSql(uow).baselines("east/team-b", this_week, 12)
    assert ("FORECAST_ERROR", "") not in region and team["FORECAST_ERROR", ""].periods == 6
    assert ("FORECAST_ERROR", "") not in company
    assert company["WIN_RATE", ""].mean == pytest.approx(0.2375)  # the company is this one region
    assert team_b["WIN_RATE", ""].mean == pytest.approx(0.25) and team["WIN_RATE", ""].mean == pytest.approx(
        0.2
    )
