"""ListLeads' tag and product-line filters (any of), the same on SQLite and PostgreSQL: they once
were accepted and ignored, so a filtered list answered every lead."""

from __future__ import annotations

from salesops.leads.v1 import leads_service_pb2 as pb
from tests.leads.conftest import Leads
from tests.leads.helpers import configure, hot_lead


async def test_tags_and_product_lines_filter_any_of(leads: Leads) -> None:
    await configure(leads)
    shapes = {
        "T1": (["vip", "expo"], ["crm"]),
        "T2": (["expo"], []),
        "T3": ([], ["erp", "crm"]),
        "T4": (["other"], ["erp"]),
    }
    for n, (lead_id, (tags, lines)) in enumerate(shapes.items()):
        lead = hot_lead(lead_id, phone=f"1380000020{n}")
        lead.tags[:] = tags
        lead.product_lines[:] = lines
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=lead))

    async def ids(**filter: list[str]) -> list[str]:
        got = await leads.call(
            "ListLeads",
            pb.ListLeadsRequest(filter=pb.LeadFilter(**filter), order_by="create_time"),
            user="director-east",
        )
        return [x.lead_id for x in got.leads]

    assert await ids() == ["T1", "T2", "T3", "T4"]
    assert await ids(tags=["expo"]) == ["T1", "T2"]
    assert await ids(tags=["vip", "other"]) == ["T1", "T4"]
    assert await ids(tags=["nothing"]) == []
    assert await ids(product_lines=["crm"]) == ["T1", "T3"]
    assert await ids(tags=["expo"], product_lines=["crm"]) == ["T1"]
