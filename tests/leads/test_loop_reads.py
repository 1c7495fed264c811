"""GetLead's and ListLeads' statements on SQLite run on the event loop's thread (sqlite_driven.answered_on_loop):
every answer sees each commit at once, a statement past its budget (or failing there) is answered
on the connection's thread instead (and then skips the loop for a while), a snapshot read is
answered by its own transaction, and the loop's connections end with the Database."""

from __future__ import annotations

import os
import sqlite3
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from kit import db_loop
from salesops.leads.v1 import lead_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads.repositories import lead_reads, lead_scope, sqlite_driven
from services.leads.repositories.lead_reads import LeadReads
from services.leads.store import LeadRow, transactions
from tests.leads.conftest import serving
from tests.leads.helpers import configure, hot_lead, mask
from tests.leads.test_sla_workflow import ADMIN


def _on_loop(readers: Any, run: Any, params: dict[str, Any]) -> list[list[Any]] | None:
    """sqlite_driven.answered_on_loop's rows (None: to be run on the connection's thread)."""
    found = sqlite_driven.answered_on_loop(readers, run, params)
    return None if found is None else found[0]


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
    monkeypatch.setattr(db_loop, "TICK_STEPS", 1)  # read as a loop connection opens
    monkeypatch.setattr(db_loop, "BUDGET_S", -1.0)  # every statement interrupted at once
    monkeypatch.setattr(db_loop, "BACKOFF_S", 3600.0)
    async with serving(sqlite_url) as leads:  # a new engine: a new loop connection
        assert await _reads(leads) == on_loop
        assert leads.db.loop_readers is not None and leads.db.loop_readers.interrupted == 2
        # Each statement interrupted for its budget goes straight to the thread from then on: an
        # always slow ListLeads is not run twice (on the loop, then on the thread) at every call.
        for _ in range(3):
            assert await _reads(leads) == on_loop
        assert leads.db.loop_readers.interrupted == 2
    assert len(runs) == 8  # GetLead's statement and ListLeads', four times each


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


async def test_a_snapshot_read_sees_its_snapshot(sqlite_url: str) -> None:
    """A LeadReads in a read unit of work with a snapshot (the default) reads that snapshot, not
    the latest commit (which a loop connection would read)."""
    async with serving(sqlite_url) as leads:
        await configure(leads)
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("L1")))
        tx = transactions(leads.db)

        async def rename(uow: Any) -> None:
            await uow.session.execute(
                update(LeadRow).where(LeadRow.lead_id == "L1").values(display_name="Renamed")
            )

        async with tx.read("demo") as uow:
            before = (await LeadReads(uow).get(ADMIN, "L1")).lead.display_name  # the snapshot begins
            await tx.run("demo", rename)
            assert (await LeadReads(uow).get(ADMIN, "L1")).lead.display_name == before != "Renamed"
        async with tx.read("demo", snapshot=False) as uow:
            assert (await LeadReads(uow).get(ADMIN, "L1")).lead.display_name == "Renamed"


def _left(path: Path) -> list[str]:
    """The database's -wal and -shm files still there."""
    return [f"{path}{end}" for end in ("-wal", "-shm") if Path(f"{path}{end}").exists()]


def _open_files(path: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    out = []
    for fd in os.listdir(fds):
        try:
            target = os.readlink(fds / fd)
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        if target.startswith(str(path)):
            out.append(target)
    return out


async def test_dispose_closes_the_loop_connections(sqlite_url: str, tmp_path: Path) -> None:
    """After Database.dispose no loop connection holds the file: the last connection closed
    checkpointed the WAL and removed it, and a file replaced afterwards is read afresh."""
    path = tmp_path / "test.db"
    async with serving(sqlite_url) as leads:
        await configure(leads)
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("L1")))
        await _reads(leads)
        assert leads.db.loop_readers is not None and leads.db.loop_readers._by_thread
        assert _open_files(path)
        db = leads.db
    assert _open_files(path) == []  # not the file, its -wal nor its -shm
    assert _left(path) == []
    # A disposed Database still serves (as its engine does): a new loop connection, closed again.
    async with transactions(db).read("demo", snapshot=False) as uow:
        assert (await LeadReads(uow).get(ADMIN, "L1")).lead.lead_id == "L1"
    assert db.loop_readers is not None and db.loop_readers._by_thread
    await db.dispose()
    assert _open_files(path) == []


def _count_loop_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    runs: list[str] = []
    rows = db_loop.LoopReaders.rows

    def counted(self: db_loop.LoopReaders, sql: str, args: Any, key: Any = None) -> list[Any] | None:
        runs.append(sql)
        return rows(self, sql, args, key)

    monkeypatch.setattr(db_loop.LoopReaders, "rows", counted)
    return runs


async def test_a_read_asked_again_before_any_commit_is_answered_without_its_statement(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop keeps a statement's rows while the database's data_version stays the same: any
    commit by any connection (the service's own writes, another process's) is seen at once."""
    async with serving(sqlite_url) as leads:
        await configure(leads)
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("L1")))
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("L2", phone="13800000092")))
        first = await _reads(leads)
        runs = _count_loop_runs(monkeypatch)
        for _ in range(3):
            assert await _reads(leads) == first
        assert runs == []  # nothing committed since: each answer kept, no statement run
        # Another connection (as another process would) renames L1: the next reads run again.
        with sqlite3.connect(tmp_path / "test.db") as other:
            other.execute("UPDATE leads SET display_name = 'Renamed' WHERE lead_id = 'L1'")
        other.close()
        got, listed = await _reads(leads)
        assert got.display_name == "Renamed" and len(runs) == 2
        assert await _reads(leads) == (got, listed) and len(runs) == 2
        # The service's own write: seen at once too.
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("L3", phone="13800000093")))
        assert (await _reads(leads))[1].total_size == 3 and len(runs) == 4


def _get_run(leads: Any) -> tuple[db_loop.LoopReaders, sqlite_driven.Driven, dict[str, Any]]:
    """GetLead's statement as LeadReads.get runs it on the loop, with ADMIN's values."""
    readers = leads.db.loop_readers
    run = sqlite_driven.driven(lead_reads._get_statement(ADMIN), leads.db.engine.dialect)
    assert readers is not None and run is not None
    return readers, run, {"tenant": "demo", **lead_scope.viewer_params(ADMIN)}


async def test_kept_empty_answers_count_against_the_bound(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer of no rows (GetLead of an id not there, a search matching nothing) is an entry
    like any other: distinct ones fill the budget and start it over, never grow past it."""
    async with serving(sqlite_url) as leads:
        await configure(leads)
        readers, run, params = _get_run(leads)
        sqlite_driven._BUDGET.resize(64 << 10)
        try:
            for i in range(2000):
                rows = _on_loop(readers, run, params | {"lead_id": f"missing-{i}"})
                assert rows in ([], None)  # None: the loop was preempted (a busy machine)
                assert len(sqlite_driven._RESULTS) <= (64 << 10) // 256  # 2000 kept at 0 bytes each
            assert 0 < sqlite_driven._BUDGET.used <= 64 << 10
        finally:
            sqlite_driven._BUDGET.resize(16 << 20)


async def test_kept_answers_are_counted_at_no_less_than_their_memory(sqlite_url: str) -> None:
    """The bytes counted for kept rows (bodies, decoded gradings, names in Chinese, empty answers)
    are at least what the entries hold (tracemalloc), so the budget bounds the memory."""
    async with serving(sqlite_url) as leads:
        await configure(leads)
        for i in range(40):
            lead = hot_lead(f"L{i}", phone=f"138000{i:05d}", company="华东贸易有限公司" * 4)
            lead.contact.name = "张伟" * 10
            lead.description = "备注 note " * (20 * i)
            await leads.call("CreateLead", pb.CreateLeadRequest(lead=lead))
        readers, run, params = _get_run(leads)
        ids = [f"L{i}" for i in range(40)] + [f"missing-{i}" for i in range(200)]
        _on_loop(readers, run, params | {"lead_id": "warm-up"})  # sqlite3's statement cache
        sqlite_driven._BUDGET.clear()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            kept = [_on_loop(readers, run, params | {"lead_id": i}) for i in ids]
            del kept
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert len(sqlite_driven._RESULTS) > 200  # most kept (a preempted one is not)
        assert sqlite_driven._BUDGET.used >= held, (sqlite_driven._BUDGET.used, held)


async def test_a_statement_backing_off_reads_no_version(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a statement goes straight to the thread (its back-off) its answer is not kept: no
    PRAGMA data_version is read for it."""
    async with serving(sqlite_url) as leads:
        await configure(leads)
        readers, run, params = _get_run(leads)
        versions: list[int] = []
        version = db_loop.LoopReaders.version

        def counted(self: db_loop.LoopReaders) -> tuple[int, int] | None:
            versions.append(1)
            return version(self)

        monkeypatch.setattr(db_loop.LoopReaders, "version", counted)
        readers._backoff[run.sql] = (db_loop._clock() + 3600.0, 3600.0)
        for i in range(5):
            assert _on_loop(readers, run, params | {"lead_id": f"x{i}"}) is None
        assert versions == []


async def test_only_kept_rows_found_again_are_named(sqlite_url: str) -> None:
    """`answered_on_loop` names kept rows found again (the page memo's key), never rows just read
    (a commit between their version and their statement would make the name older than them); a
    commit gives the next kept rows another name."""
    async with serving(sqlite_url) as leads:
        await configure(leads)
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("L1")))
        readers, run, params = _get_run(leads)
        params |= {"lead_id": "L1"}
        sqlite_driven._BUDGET.clear()

        def answered() -> tuple[list[list[Any]], sqlite_driven.Answer | None]:
            for _ in range(20):  # None: the loop was preempted (a busy machine); asked again
                found = sqlite_driven.answered_on_loop(readers, run, params)
                if found is not None:
                    return found
            raise AssertionError("never answered on the loop")

        rows, name = answered()
        assert rows and name is None
        again, name = answered()
        assert again is rows and name is not None and name[:2] == (run.sql, tuple(run.args(params)))
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("L2", phone="13800000092")))
        fresh, after = answered()
        assert after is None and fresh is not rows
        assert (kept := answered())[0] is fresh and kept[1] is not None and kept[1] != name
