"""OWASP API4 (resource consumption) in leads: manager views aggregate in SQL or read one page,
never every matching lead into memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, update

from salesops.leads.v1 import insights_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads.store import LeadRow
from tests.leads.conftest import Leads
from tests.leads.helpers import configure, hot_lead

N = 24


@pytest.fixture
def loaded() -> Iterator[list[str]]:
    """Ids of the lead rows the ORM materialises while the test runs (the server runs in process)."""
    seen: list[str] = []

    def on_load(target: Any, _context: Any) -> None:
        seen.append(target.lead_id)

    event.listen(LeadRow, "load", on_load)
    yield seen
    event.remove(LeadRow, "load", on_load)


async def many_leads(leads: Leads) -> None:
    await configure(leads)
    for i in range(N):
        # Grade C leads wait in the pool for a claim.
        lead = hot_lead(f"BULK-{i:02d}", phone=f"139000{i:05d}", budget=100_000_00, channel=1)
        lead.company.name = f"Company {i}"
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=lead))


async def test_metrics_are_aggregated_in_sql(leads: Leads, loaded: list[str]) -> None:
    await many_leads(leads)
    loaded.clear()
    out = await leads.call(
        "GetLeadMetrics",
        pb.GetLeadMetricsRequest(group_by=insights_pb2.METRICS_DIMENSION_SOURCE_CODE),
        user="admin",
    )
    assert out.totals.created_count >= N
    assert loaded == []  # figures come from SQL aggregates, not from N rows in memory


async def test_attention_board_reads_one_page(leads: Leads, loaded: list[str]) -> None:
    await many_leads(leads)
    # Make every lead need attention: an unrouted pool lead is on the board.
    async with leads.db.session("demo") as s:
        await s.execute(update(LeadRow).values(needs_attention=True, pool_entry_reason="UNROUTED"))
        await s.commit()
    loaded.clear()
    page = await leads.call("ListAttentionItems", pb.ListAttentionItemsRequest(page_size=5), user="admin")
    assert len(page.items) == 5 and page.total_size >= N and page.next_page_token
    assert len(loaded) <= 6, f"{len(loaded)} lead rows read for a page of 5"
