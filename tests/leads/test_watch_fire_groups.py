"""The watch's fires due together share a transaction (services/leads/fire_groups.py): every reminder
is applied once with its one event, a repeated fire applies nothing, and a group that fails runs its
fires alone so one bad lead never fails the others. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select, update

from kit.db import Database
from kit.migrations import upgrade_to_head
from kit.resources import UnitOfWork
from services.leads import activities
from services.leads.domain import sla
from services.leads.fire_groups import FireGroups
from services.leads.store import LeadRow, transactions
from services.leads.workflows import FireInput, Timer
from tests.leads.helpers import events
from tests.leads.test_sla_workflow import configure_core, create_at

N = 24


async def _due_leads(db: Database, n: int) -> tuple[list[str], datetime]:
    """n owned leads pending their first response, their reminders due a minute ago."""
    at = datetime.now(UTC)
    ids = [f"FG{i:04d}" for i in range(n)]
    for i, lead_id in enumerate(ids):
        await create_at(db, lead_id, at, phone=f"1390000{i:04d}")
    due = at - timedelta(minutes=1)

    async def work(uow: UnitOfWork) -> None:
        await uow.session.execute(
            update(LeadRow)
            .where(LeadRow.lead_id.in_(ids))
            .values(sla_state=sla.PENDING, sla_reminder=due, sla_due=at + timedelta(hours=1))
        )

    await transactions(db).run("demo", work)
    return ids, due


async def test_a_burst_of_fires_is_grouped_and_each_applies_once(database_url: str) -> None:
    db = Database(database_url)
    try:
        await upgrade_to_head("leads", db)
        await configure_core(db)
        ids, due = await _due_leads(db, N)
        acts = activities.WatchActivities(db)

        async def fire_all() -> list[Timer]:
            return await asyncio.gather(
                *(acts.fire(FireInput("demo", i, sla.REMIND, due.isoformat())) for i in ids)
            )

        lead_reads: list[str] = []

        def count(conn, cursor, statement, *rest) -> None:  # type: ignore[no-untyped-def]
            if statement.lstrip().startswith("SELECT") and "FROM leads" in statement:
                lead_reads.append(statement)

        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        found = await fire_all()
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
        assert acts.fires.groups >= 1  # the fires that arrived during the first one's transaction
        # A group reads its leads in one statement (the first fire ran alone, with a read of its own).
        assert len(lead_reads) < N
        assert {t.kind for t in found} == {sla.BREACH}  # each answers its own lead's next timer
        reminders = await events(db, "leads.SlaReminderDue")
        assert sorted(e.subject for _, e in reminders) == sorted(ids)
        async with db.system_session() as s:
            reminded = (await s.scalars(select(LeadRow.sla_reminded).where(LeadRow.lead_id.in_(ids)))).all()
        assert all(reminded) and len(reminded) == N

        await fire_all()  # a retried fire (its local activity ran again) re-checks: nothing doubles
        assert len(await events(db, "leads.SlaReminderDue")) == N
    finally:
        await db.dispose()


async def test_a_failing_group_runs_its_fires_alone(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        await upgrade_to_head("leads", db)
        ids, _ = [f"L{i}" for i in range(6)], None
        groups = FireGroups(transactions(db))
        started = asyncio.Event()
        release = asyncio.Event()
        runs: list[str] = []

        def work_for(lead_id: str):  # type: ignore[no-untyped-def]
            async def work(uow: UnitOfWork) -> str:
                runs.append(lead_id)
                if lead_id == "L0":  # the first holds the transaction while the rest queue
                    started.set()
                    await release.wait()
                if lead_id == "L3":
                    raise RuntimeError("bad lead")
                return lead_id

            return work

        first = asyncio.create_task(groups.run("demo", work_for("L0")))
        await started.wait()
        rest = [asyncio.create_task(groups.run("demo", work_for(i))) for i in ids[1:]]
        await asyncio.sleep(0.05)
        release.set()
        assert await first == "L0"
        results = await asyncio.gather(*rest, return_exceptions=True)
        assert [r if isinstance(r, str) else "error" for r in results] == ["L1", "L2", "error", "L4", "L5"]
        # Grouped once (L1-L5, rolled back at L3's error), then each alone: L4 and L5 ran once alone.
        assert runs[:4] == ["L0", "L1", "L2", "L3"]
        assert sorted(runs[4:]) == ["L1", "L2", "L3", "L4", "L5"]
    finally:
        await db.dispose()


@pytest.mark.parametrize("n", [1])
async def test_a_lone_fire_runs_at_once(sqlite_url: str, n: int) -> None:
    db = Database(sqlite_url)
    try:
        await upgrade_to_head("leads", db)
        groups = FireGroups(transactions(db))

        async def work(uow: UnitOfWork) -> int:
            return n

        assert await groups.run("demo", work) == n
        assert groups.groups == 0
    finally:
        await db.dispose()


async def test_the_fires_of_a_burst_after_a_group_wait_for_each_other(sqlite_url: str) -> None:
    """After a group, its slots' next fires (a burst's next workflow tasks) form the next group together
    instead of the first of them running alone and the rest grouped behind it."""
    db = Database(sqlite_url)
    try:
        await upgrade_to_head("leads", db)
        groups = FireGroups(transactions(db))
        started, release = asyncio.Event(), asyncio.Event()
        batches: list[tuple[UnitOfWork, list[str]]] = []  # each transaction's fires, in order

        def work_for(lead_id: str):  # type: ignore[no-untyped-def]
            async def work(uow: UnitOfWork) -> str:
                if not batches or batches[-1][0] is not uow:
                    batches.append((uow, []))
                batches[-1][1].append(lead_id)
                if lead_id == "A0":  # the first holds the transaction while the rest queue
                    started.set()
                    await release.wait()
                return lead_id

            return work

        async def slot(i: int) -> None:
            await groups.run("demo", work_for(f"A{i}"))  # grouped with the others queued behind A0
            await groups.run("demo", work_for(f"B{i}"))  # the burst's next fire on this slot

        first = asyncio.create_task(groups.run("demo", work_for("A0")))
        await started.wait()
        slots = [asyncio.create_task(slot(i)) for i in range(1, 5)]
        while len(groups._groups._keys["demo"].queue) < 4:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        release.set()
        await asyncio.gather(first, *slots)
        assert [sorted(b) for _, b in batches] == [["A0"], ["A1", "A2", "A3", "A4"], ["B1", "B2", "B3", "B4"]]
    finally:
        await db.dispose()
