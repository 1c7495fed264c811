"""Read paths: ListLeads' bounded count (same total on every page, counted no further than asked)
and GetLead's one-round-trip read of the lead with its duplicate candidates."""

from __future__ import annotations

import pytest
from sqlalchemy import true

from kit.errors import NotFound
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads.repositories.intakes import DuplicateRepository
from services.leads.repositories.leads import LeadRepository
from services.leads.store import transactions
from tests.leads.conftest import Leads
from tests.leads.helpers import configure, hot_lead
from tests.leads.test_sla_workflow import ADMIN


async def test_list_total_is_the_same_on_every_page_and_the_count_is_bounded(leads: Leads) -> None:
    await configure(leads)
    for i in range(3):
        lead = hot_lead(f"T{i}", phone=f"1380000030{i}", budget=0, channel=1)
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=lead))
    totals, token, seen = [], "", 0
    while True:
        page = await leads.call("ListLeads", pb.ListLeadsRequest(page_size=2, page_token=token))
        totals.append(page.total_size)
        seen += len(page.leads)
        token = page.next_page_token
        if not token:
            break
    assert seen == 3 and totals == [3, 3]
    async with transactions(leads.db).read("demo") as uow:
        assert await LeadRepository(uow).count_upto([true()], 2) == 2
        assert await LeadRepository(uow).count_upto([true()], 10) == 3


async def test_get_lead_reads_its_candidates_with_it_and_hides_another_tenants(leads: Leads) -> None:
    await configure(leads)
    await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("DB", phone="13800000312")))
    got = (await leads.call("GetLead", pb.GetLeadRequest(lead_id="DB"))).lead
    async with transactions(leads.db).read("demo") as uow:
        row, dups = await LeadRepository(uow).visible_with_duplicates(ADMIN, "DB")
        listed = await DuplicateRepository(uow).of_lead("DB")
    assert row.lead_id == "DB" == got.lead_id
    assert sorted(d.other_lead_id for d in dups) == sorted(d.other_lead_id for d in listed)
    async with transactions(leads.db).read("other") as uow:
        with pytest.raises(NotFound):
            await LeadRepository(uow).visible_with_duplicates(ADMIN, "DB")


async def test_list_basic_view_leaves_out_only_the_grading(leads: Leads) -> None:
    """ListLeads' BASIC view does not read the grading details (only FULL shows them); the rest of
    each lead is the same in both views, and the same as GetLead's BASIC view."""
    await configure(leads)
    for i in range(3):
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead(f"V{i}", phone=f"1380000040{i}")))
    basic = await leads.call("ListLeads", pb.ListLeadsRequest(page_size=10))
    full = await leads.call("ListLeads", pb.ListLeadsRequest(page_size=10, view=pb.LEAD_VIEW_FULL))
    assert len(basic.leads) == len(full.leads) == 3 and basic.total_size == full.total_size == 3
    for b, f in zip(basic.leads, full.leads, strict=True):
        assert f.HasField("grading") and not b.HasField("grading")
        f.ClearField("grading")
        assert b == f
        got = (
            await leads.call("GetLead", pb.GetLeadRequest(lead_id=b.lead_id, view=pb.LEAD_VIEW_BASIC))
        ).lead
        got.ClearField("recycle")
        got.caller_can_claim = False
        assert got == b
