"""GetLead's and ListLeads' statements on SQLite run on the event loop's thread (sqlite_driven.on_loop):
every answer sees each commit at once, a statement past its budget (or failing there) is answered
on the connection's thread instead, and the loop's connection never writes nor makes a file."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from salesops.leads.v1 import lead_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads.repositories import sqlite_driven
from services.leads.repositories.lead_reads import LeadReads
from services.leads.store import LeadRow, transactions
from tests.leads.conftest import serving
from tests.leads.helpers import configure, hot_lead, mask
from tests.leads.test_sla_workflow import ADMIN


def _count_thread_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    runs: list[str] = []
    on_thread = sqlite_driven.on_thread

    async def counted(conn: Any, run: sqlite_driven.Driven, params: dict[str, Any]) -> list[list[Any]]:
        runs.append(run.sql)
        return await on_thread(conn, run, params)

    monkeypatch.setattr(sqlite_driven, "on_thread", counted)
    return runs


async def _reads(leads: Any) -> tuple[lead_pb2.Lead, pb.ListLeadsResponse]:
    got = (await leads.call("GetLead", pb.GetLeadRequest(lead_id="L1"))).lead
    listed = await leads.call("ListLeads", pb.ListLeadsRequest(page_size=1, order_by="score desc"))
    return got, listed


async def test_reads_run_on_the_loop_and_see_every_commit(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = _count_thread_runs(monkeypatch)
    async with serving(sqlite_url) as leads:
        await configure(leads)
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("L1")))
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("L2", phone="13800000092")))
        got, listed = await _reads(leads)
        assert got.contact.email == "" and listed.total_size == 2 and len(listed.leads) == 1
        # A change committed by the unit of work's connection is seen by the very next read (the
        # loop's connection holds no snapshot between statements), on both paths.
        for n, email in enumerate(("a@acme.cn", "b@acme.cn")):
            change = lead_pb2.Lead(lead_id="L1", etag=got.etag)
            change.contact.email = email
            await leads.call(
                "UpdateLead", pb.UpdateLeadRequest(lead=change, update_mask=mask("contact.email"))
            )
            got, listed = await _reads(leads)
            assert got.contact.email == email and got.etag == str(int(change.etag) + 1), n
            page = {lead.lead_id: lead for lead in listed.leads}
            if "L1" in page:
                assert page["L1"].contact.email == email
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("L3", phone="13800000093")))
        assert (await _reads(leads))[1].total_size == 3
    assert runs == []  # every statement was answered on the loop's thread


async def test_a_statement_past_its_budget_is_answered_on_the_connection_thread(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serving(sqlite_url) as leads:
        await configure(leads)
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("L1")))
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("L2", phone="13800000092")))
        on_loop = await _reads(leads)
    runs = _count_thread_runs(monkeypatch)
    monkeypatch.setattr(sqlite_driven, "TICK_STEPS", 1)  # read as a loop connection opens
    monkeypatch.setattr(sqlite_driven, "BUDGET_S", -1.0)  # every statement interrupted at once
    async with serving(sqlite_url) as leads:  # a new engine: a new loop connection
        assert await _reads(leads) == on_loop
    assert len(runs) == 2  # GetLead's statement and ListLeads'


def test_the_loop_connection_neither_writes_nor_makes_a_database(tmp_path: Path) -> None:
    missing = tmp_path / "no such.db"
    with pytest.raises(sqlite3.OperationalError):
        sqlite_driven._LoopReader(str(missing))
    assert not missing.exists()
    path = tmp_path / "x.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (a)")
    reader = sqlite_driven._LoopReader(str(path))
    assert reader.rows("INSERT INTO t VALUES (1)", []) is None  # query_only: refused, not written
    assert reader.rows("SELECT count(*) FROM t", []) == [(0,)]


async def test_a_writers_unit_of_work_reads_on_its_own_connection(sqlite_url: str) -> None:
    """What a writer changed and has not committed is seen by its own reads (never the loop's)."""
    async with serving(sqlite_url) as leads:
        await configure(leads)
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("L1")))

        async def work(uow: Any) -> str:
            await uow.session.execute(
                update(LeadRow).where(LeadRow.lead_id == "L1").values(display_name="Renamed")
            )
            return (await LeadReads(uow).get(ADMIN, "L1")).lead.display_name

        assert await transactions(leads.db).run("demo", work) == "Renamed"
