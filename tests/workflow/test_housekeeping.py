"""Event-table housekeeping: the workflow purges only what is past retention; the schedule is idempotent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import MetaData, func, insert, select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from kit import housekeeping, temporal
from kit.db import Database
from kit.events import outbox_table, processed_events_table


async def _seed(db: Database) -> tuple[object, object]:
    metadata = MetaData()
    outbox, processed = outbox_table(metadata), processed_events_table(metadata)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    now = datetime.now(UTC)
    rows = []
    for i in range(30):
        age = timedelta(days=10) if i < 20 else timedelta(hours=1)
        rows.append(
            {
                "id": f"{i:026d}",
                "tenant_id": "demo",
                "type": "leads.LeadCreated",
                "subject": "x",
                "envelope": b"",
                "created_at": now - age,
                # Old but never published rows must survive: they are not sent yet.
                "published_at": (now - age) if i % 10 else None,
                "attempts": 0,
            }
        )
    async with db.system_session() as s:
        await s.execute(insert(outbox), rows)
        await s.execute(
            insert(processed),
            [
                {
                    "consumer_group": g,
                    "event_id": f"{i:026d}",
                    "processed_at": now - timedelta(days=10 if i < 5 else 0),
                }
                for g in ("notify", "pipeline")
                for i in range(10)
            ],
        )
        await s.commit()
    return outbox, processed


async def test_purge_workflow_removes_only_old_published_rows(
    temporal_skipping: WorkflowEnvironment, sqlite_url: str
) -> None:
    db = Database(sqlite_url)
    outbox, processed = await _seed(db)
    purger = housekeeping.EventTablePurger(db, outbox, processed)  # type: ignore[arg-type]
    client: Client = temporal_skipping.client
    worker = temporal.build_worker(
        client, "hk-test", workflows=[housekeeping.HousekeepingWorkflow], activities=[purger.purge]
    )
    async with worker:
        result = await client.execute_workflow(
            housekeeping.HousekeepingWorkflow.run,
            housekeeping.PurgeRequest(outbox_retention_days=7, processed_retention_days=7, chunk=4),
            id=f"hk-{uuid.uuid4()}",
            task_queue="hk-test",
        )
    # 20 old rows, of which ids 0 and 10 were never published; 5 old ids in each of 2 groups.
    assert (result.outbox_rows, result.processed_ids) == (18, 10)
    async with db.system_session() as s:
        assert await s.scalar(select(func.count()).select_from(outbox)) == 12  # type: ignore[arg-type]
        assert await s.scalar(select(func.count()).select_from(processed)) == 10  # type: ignore[arg-type]
    await db.dispose()


async def test_schedule_is_created_once(temporal_dev: WorkflowEnvironment) -> None:
    client = temporal_dev.client
    await housekeeping.ensure_schedule(client, "leads", "salesops-leads")
    await housekeeping.ensure_schedule(client, "leads", "salesops-leads")  # a second worker starting
    handle = client.get_schedule_handle(housekeeping.schedule_id("leads"))
    desc = await handle.describe()
    assert desc.schedule.spec.intervals[0].every == timedelta(hours=6)
