"""GetLeadMetrics by creation day (the dashboards' SLA and MTTR over time) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from salesops.leads.v1 import insights_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads.store import LeadRow
from tests.leads.conftest import Leads
from tests.leads.helpers import configure, hot_lead


async def test_metrics_by_creation_day_are_a_time_series(leads: Leads) -> None:
    await configure(leads)
    for i, phone in enumerate(("13800000091", "13800000092", "13800000093")):
        await leads.call(
            "CreateLead", pb.CreateLeadRequest(lead=hot_lead(f"D{i}", phone=phone, company=f"Day {i}"))
        )
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    async with leads.db.system_session() as s:  # backdate one lead: two days in the series
        await s.execute(update(LeadRow).where(LeadRow.lead_id == "D0").values(created_at=two_days_ago))
        await s.commit()
    out = await leads.call(
        "GetLeadMetrics",
        pb.GetLeadMetricsRequest(group_by=insights_pb2.METRICS_DIMENSION_CREATE_DAY),
        user="admin",
    )
    days = [(g.group_key, g.created_count) for g in out.groups]
    assert days == [(two_days_ago.date().isoformat(), 1), (datetime.now(UTC).date().isoformat(), 2)]
    assert out.totals.created_count == 3
    other_team = await leads.call(
        "GetLeadMetrics",
        pb.GetLeadMetricsRequest(group_by=insights_pb2.METRICS_DIMENSION_CREATE_DAY),
        user="sup-b",
    )  # the org scope holds per day too: team A's leads are not team B's
    assert sum(g.created_count for g in other_team.groups) == other_team.totals.created_count
