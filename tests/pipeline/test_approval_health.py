"""Process health's approval turnaround: submit to decision of the unit's approvals decided in the week, in SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kit.resources import UnitOfWork
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import process_health_pb2 as ph
from services.pipeline.convert import date_proto
from services.pipeline.domain.discipline import week_start
from services.pipeline.store import transactions
from services.pipeline.store_approvals import ApprovalRow
from tests.pipeline.conftest import Pipeline

TEAM = "east/team-a"


async def test_turnaround_is_the_mean_hours_of_the_weeks_decided_approvals(pipeline: Pipeline) -> None:
    monday = week_start(datetime.now(UTC).date()) - timedelta(days=7)
    decided = datetime(monday.year, monday.month, monday.day, 10, tzinfo=UTC) + timedelta(days=2)
    rows = [  # (id, org path, state, hours from submit to completion, completed in the week)
        ("a1", TEAM, "APPROVED", 10, True),
        ("a2", TEAM, "REJECTED", 30, True),
        ("a3", TEAM, "CANCELLED", 99, True),  # withdrawn / cancelled: no decision
        ("a4", TEAM, "APPROVED", 500, False),  # decided the week before
        ("a5", "east/team-b", "APPROVED", 70, True),  # another team
        ("a6", TEAM, "IN_PROGRESS", 0, False),
    ]

    async def seed(uow: UnitOfWork) -> None:
        for approval_id, org, state, hours, in_week in rows:
            done = decided if in_week else decided - timedelta(days=7)
            uow.session.add(
                ApprovalRow(
                    approval_id=approval_id,
                    flow_id="f",
                    flow_version=1,
                    kind="CONTRACT",
                    org_path=org,
                    requester_user_id="rep-a1",
                    state=state,
                    submit_time=done - timedelta(hours=hours),
                    complete_time=None if state == "IN_PROGRESS" else done,
                    body=b"",
                )
            )

    await transactions(pipeline.db).run("demo", seed)
    ask = pb.GetProcessHealthRequest(org_path=TEAM)
    ask.period.start_date.CopyFrom(date_proto(monday))

    def turnaround(report: ph.ProcessHealthReport) -> ph.ProcessMetricValue:
        return next(m for m in report.metrics if m.metric == ph.PROCESS_METRIC_APPROVAL_TURNAROUND)

    team = turnaround((await pipeline.call("GetProcessHealth", ask, "sup-a")).report)
    assert not team.unavailable
    assert (round(team.value, 6), team.sample_size) == (20.0, 2)
    region = pb.GetProcessHealthRequest(org_path="east")
    region.period.start_date.CopyFrom(date_proto(monday))
    east = turnaround((await pipeline.call("GetProcessHealth", region, "director-east")).report)
    assert (round(east.value, 6), east.sample_size) == (round(110 / 3, 6), 3)
    quiet = pb.GetProcessHealthRequest(org_path=TEAM)
    quiet.period.start_date.CopyFrom(date_proto(monday - timedelta(days=14)))
    assert turnaround((await pipeline.call("GetProcessHealth", quiet, "sup-a")).report).unavailable
