"""A CreateLead group's reads sent on SQLite's driver connection (repositories.imports._plain_rows)
answer what SQLAlchemy's execution of the same statements answers, see the transaction's own
writes, and fail as SQLAlchemy's errors do."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from kit.resources import UnitOfWork
from services.leads.repositories import imports
from services.leads.repositories.imports import ImportRepository
from services.leads.store import IntakeRow, LeadRow, transactions
from tests.leads.conftest import Leads
from tests.leads.helpers import configure

AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
NAMES = ("acmedata", "acmedatb", "acmezz", "acaaa", "zenith")


async def _seed(uow: UnitOfWork) -> None:
    for n, name in enumerate(NAMES):
        uow.session.add(
            LeadRow(
                lead_id=f"L{n}",
                status="MERGED" if name == "acmezz" else "IN_POOL",
                display_name=name.title(),
                phone="+8613900000001" if n in (1, 2) else "",
                email=f"l{n}@example.com",
                company_norm=name,
                company_key=name[:2],
                created_at=AT,
                updated_at=AT,
            )
        )
        uow.session.add(IntakeRow(intake_id=f"I{n}", lead_id=f"L{n}", outcome="CREATED", receive_time=AT))
    await uow.session.flush()


async def test_driver_reads_answer_as_sqlalchemy(leads: Leads) -> None:
    if not leads.db.is_sqlite:
        pytest.skip("the driver path is SQLite's")
    ids = ["I0", "I3", "nope", "I4"]
    blocks = {"acmedat": "ac", "acz": "ac", "zz": "zz"}

    await configure(leads)  # stored policy documents: versions to read

    async def work(uow: UnitOfWork) -> None:
        await _seed(uow)  # in this transaction, not committed yet: the reads must see it
        repo = ImportRepository(uow)
        versions, found = await repo.versions_and_intakes(ids)
        conn = await uow.session.connection()
        expected = {}
        for key, version, lead_id, outcome in await repo._versions_pg(conn, [sorted(set(ids))]):
            expected[key] = (version, lead_id, outcome)
        assert versions == {k: v for k, (v, _, _) in expected.items() if v is not None}
        assert versions and set(found) == {"I0", "I3", "I4"}
        assert {k: (r.lead_id, r.outcome) for k, r in found.items()} == {
            k: (lead, outcome) for k, (v, lead, outcome) in expected.items() if v is None
        }
        near = await repo.names_near(blocks, 2)
        # SQLAlchemy's execution of the same compound statement, as before.
        chunk = sorted(blocks)
        params: list[str | int] = []
        for name in chunk:
            params += [uow.tenant, blocks[name], name, 2] * 2
        result = await conn.exec_driver_sql(imports._near_sqlite(len(chunk)), tuple(params))
        rows = cast(list[tuple[int, int, str, str, str]], result.all())
        by_name: dict[str, tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]] = {
            n: ([], []) for n in chunk
        }
        for pos, side, lead_id, norm, display in rows:
            by_name[chunk[pos]][side].append((lead_id, norm, display))
        assert near == by_name
        assert near["acmedat"][0] == [("L0", "acmedata", "Acmedata"), ("L1", "acmedatb", "Acmedatb")]
        assert near["acz"] == ([], [("L1", "acmedatb", "Acmedatb"), ("L0", "acmedata", "Acmedata")])
        # The contact lookups: the probe and load by id find what the ORM's UNION of them finds.
        for phones, emails, lead_ids in (
            (["+8613900000001", "none"], ["l3@example.com"], ["L2", "L4", "none"]),
            ([], [], ["L0"]),
            (["none"], [], []),
        ):
            keys = (imports._chunks(phones), imports._chunks(emails), imports._chunks(lead_ids))
            probed = await repo._by_keys_probed(*keys)
            assert probed == await repo._by_keys_union(*keys)
            assert all(r in uow.session for r in probed.values())  # the session's own rows
        contacts, by_id = await repo.by_contacts_and_ids(
            ["+8613900000001"], ["l3@example.com", "l2@example.com"], ["L2", "L4", "none"]
        )
        assert sorted(r.lead_id for r in contacts) == ["L1", "L3"]  # L2 is merged: not a contact
        assert sorted(by_id) == ["L2", "L4"]
        with pytest.raises(OperationalError):
            await imports._plain_rows(conn, "SELECT no_such_column FROM leads", ())

    await transactions(leads.db).run("demo", work)


async def test_driver_reads_answer_as_sqlalchemy_on_postgresql(leads: Leads) -> None:
    if leads.db.is_sqlite:
        pytest.skip("PostgreSQL's driver path")
    blocks = {"acmedat": "ac", "acz": "ac", "zz": "zz"}

    await configure(leads)  # stored policy documents: versions to read

    async def work(uow: UnitOfWork) -> None:
        await _seed(uow)  # in this transaction, not committed yet: the read must see it
        repo = ImportRepository(uow)
        ids = ["I0", "I3", "nope", "I4"]
        versions, found = await repo.versions_and_intakes(ids)
        conn = await uow.session.connection()
        expected = {}
        for key, version, lead_id, outcome in await repo._versions_pg(conn, [sorted(set(ids))]):
            expected[key] = (version, lead_id, outcome)
        assert versions == {k: v for k, (v, _, _) in expected.items() if v is not None}
        assert versions and set(found) == {"I0", "I3", "I4"}
        assert {k: (r.lead_id, r.outcome) for k, r in found.items()} == {
            k: (lead, outcome) for k, (v, lead, outcome) in expected.items() if v is None
        }
        assert (await repo.versions_and_intakes([]))[0] == versions
        near = await repo.names_near(blocks, 2)
        chunk = sorted(blocks)
        params = {"tenant": uow.tenant, "names": chunk, "keys": [blocks[n] for n in chunk]}
        by_name: dict[str, tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]] = {
            n: ([], []) for n in chunk
        }
        for name, side, lead_id, norm, display in (await conn.execute(imports._near(2), params)).all():
            by_name[name][side].append((lead_id, norm, display))
        assert near == by_name
        assert near["acmedat"][0] == [("L0", "acmedata", "Acmedata"), ("L1", "acmedatb", "Acmedatb")]
        assert near["acz"] == ([], [("L1", "acmedatb", "Acmedatb"), ("L0", "acmedata", "Acmedata")])
        # The contact lookups: the driver probe and load by id find what the ORM's UNION finds.
        for phones, emails, lead_ids in (
            (["+8613900000001", "none"], ["l3@example.com"], ["L2", "L4", "none"]),
            ([], [], ["L0"]),
            (["none"], [], []),
            (["+8613900000001"], ["l1@example.com", "l2@example.com"], []),  # L1 twice, L2 merged
        ):
            keys = (imports._chunks(phones), imports._chunks(emails), imports._chunks(lead_ids))
            probed = await repo._by_keys_probed(*keys)
            assert probed == await repo._by_keys_union(*keys)
            assert all(r in uow.session for r in probed.values())  # the session's own rows
        contacts, by_id = await repo.by_contacts_and_ids(
            ["+8613900000001"], ["l3@example.com", "l2@example.com"], ["L2", "L4", "none"]
        )
        assert sorted(r.lead_id for r in contacts) == ["L1", "L3"]  # L2 is merged: not a contact
        assert sorted(by_id) == ["L2", "L4"]
        with pytest.raises(DBAPIError):
            await imports._plain_rows_pg(conn, "SELECT no_such_column FROM leads", ())

    await transactions(leads.db).run("demo", work)


async def test_a_connection_lost_under_the_driver_read_runs_the_unit_of_work_again(leads: Leads) -> None:
    """The server ends the connection (a restart, a failover) before names_near's driver read: the
    error says the connection was invalidated, as SQLAlchemy's execution does, so the unit of work
    runs once more on a new connection instead of answering INTERNAL."""
    if leads.db.is_sqlite:
        pytest.skip("PostgreSQL's driver path")
    runs: list[int] = []

    async def work(uow: UnitOfWork) -> dict[str, object]:
        runs.append(len(runs))
        if len(runs) == 1:
            driver: Any = (await (await uow.session.connection()).get_raw_connection()).driver_connection
            with contextlib.suppress(Exception):  # the server ends this very connection
                await driver.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return cast(dict[str, object], await ImportRepository(uow).names_near({"acmedat": "ac"}, 2))

    near = await transactions(leads.db).run("demo", work)
    assert runs == [0, 1] and set(near) == {"acmedat"}


async def test_a_fresh_unit_of_works_driver_reads_run_in_its_transaction(
    leads: Leads, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLAlchemy's asyncpg adapter sends BEGIN at its own first statement: a group's first reads,
    sent on the driver before any, must begin the unit of work's transaction themselves (one
    snapshot, the transaction's isolation), and SQLAlchemy's statements after them go on in it."""
    if leads.db.is_sqlite:
        pytest.skip("PostgreSQL's driver path")
    import asyncpg

    await configure(leads)
    seen: list[tuple[str, bool]] = []
    fetch = asyncpg.Connection.fetch

    async def spied(self: asyncpg.Connection, query: str, *args: Any, **kw: Any) -> Any:
        seen.append((query.split()[0], self.is_in_transaction()))
        return await fetch(self, query, *args, **kw)

    monkeypatch.setattr(asyncpg.Connection, "fetch", spied)

    async def work(uow: UnitOfWork) -> tuple[int, int]:
        repo = ImportRepository(uow)
        await repo.versions_and_intakes(["I0"])
        await repo.by_contacts_and_ids(["+8613900000001"], ["l0@example.com"], ["L0"])
        await repo.names_near({"acmedat": "ac"}, 2)
        conn = await uow.session.connection()
        driver_xid = (await imports._plain_rows_pg(conn, "SELECT txid_current()", ()))[0][0]
        await _seed(uow)  # SQLAlchemy's own statements, in the same transaction
        return int(driver_xid), int(await uow.session.scalar(text("SELECT txid_current()")))

    driver_xid, orm_xid = await transactions(leads.db).run("demo", work)
    assert seen and all(inside for _, inside in seen), seen
    assert driver_xid == orm_xid
    async with transactions(leads.db).read("demo") as uow:  # committed as one unit of work
        assert await uow.session.scalar(text("SELECT count(*) FROM leads")) == len(NAMES)
