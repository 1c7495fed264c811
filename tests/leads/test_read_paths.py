"""Read paths: ListLeads' bounded count (same total on every page, counted no further than asked)
and GetLead's one-round-trip read of the lead with its duplicate candidates."""

from __future__ import annotations

from typing import Any

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


async def test_get_leads_arriving_while_the_policy_versions_are_read_share_that_read(
    leads: Leads, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GetLead may use policy versions seen up to a second ago; when they go stale under many reads
    in flight, one of them reads the versions and the others wait for its answer."""
    import asyncio

    from sqlalchemy import event

    from services.leads import policies

    await configure(leads)
    await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("PV", phone="13800000501")))
    version_reads: list[str] = []

    def count(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        if "FROM settings" in statement or "FROM tenant_settings" in statement:
            version_reads.append(statement)

    event.listen(leads.db.engine.sync_engine, "before_cursor_execute", count)
    real = policies.policy_versions

    async def slow(uow: Any) -> dict[str, int]:  # the others arrive while this read is in flight
        await asyncio.sleep(0.05)
        return await real(uow)

    monkeypatch.setattr(policies, "policy_versions", slow)
    # Versions read are fresh for a minute here: on a busy machine the 16 calls can arrive over more
    # than the second the service allows, and a call a second late rightly reads again.
    monkeypatch.setattr(policies, "READ_STALENESS_S", 60.0)
    for _ in range(2):
        for seen in list(policies._SEEN.values()):
            seen.clear()  # stale: the next GetLead reads the versions
        version_reads.clear()
        got = await asyncio.gather(
            *(leads.call("GetLead", pb.GetLeadRequest(lead_id="PV")) for _ in range(16))
        )
        assert {g.lead.lead_id for g in got} == {"PV"}
        assert len(version_reads) == 1, version_reads
