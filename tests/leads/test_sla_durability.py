"""On a real Temporal dev server: our own LeadAssigned event starts the watch (relay -> stream -> consumer),
the worker is stopped mid-wait, and the reminder still comes once a new worker is up; and Temporal
itself is killed mid-wait and restarted on its database, and the reminder still comes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import update
from temporalio.testing import WorkflowEnvironment

from deploy.local.infra import free_port, start_temporal_dev
from kit.db import Database
from kit.events import OutboxRelay, service_stream, unpack_payload
from kit.migrations import upgrade_to_head
from kit.resources import UnitOfWork
from kit.runtime import build_consumer
from kit.temporal import WorkerRunner, build_worker, connect
from salesops.leads.v1 import events_pb2
from services.leads import activities, consumers, intake, workflows
from services.leads.app import SPEC
from services.leads.intake import IntakeResult
from services.leads.store import LeadRow, outbox, transactions
from tests.leads.helpers import events, hot_lead
from tests.leads.test_sla_workflow import ADMIN, configure_core

pytestmark = pytest.mark.slow


def worker(env: WorkflowEnvironment, db: Database, queue: str) -> WorkerRunner:
    acts = activities.WatchActivities(db)
    runner = WorkerRunner(
        build_worker(
            env.client,
            queue,
            workflows=[workflows.LeadWatchWorkflow],
            activities=[acts.next_timer, acts.fire],
            options=SPEC.worker_options,
        )
    )
    runner.start()
    return runner


async def test_reminder_survives_a_worker_restart(
    sqlite_url: str, redis_url: str, temporal_dev: WorkflowEnvironment
) -> None:
    db = Database(sqlite_url)
    await upgrade_to_head("leads", db)
    await configure_core(db)
    redis = aioredis.Redis.from_url(redis_url)
    queue = f"leads-{uuid.uuid4().hex[:8]}"
    relay = OutboxRelay(db, redis, service_stream("leads"), table=outbox)
    rt = SimpleNamespace(
        db=db, redis=redis, temporal=temporal_dev.client, settings=SimpleNamespace(task_queue=queue)
    )
    consumer = build_consumer(rt, SPEC, SPEC.consumers[0])  # type: ignore[arg-type]
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]
    first = worker(temporal_dev, db, queue)
    second: WorkerRunner | None = None
    try:
        now = datetime.now(UTC)

        async def create(uow: UnitOfWork) -> IntakeResult:
            res = await intake.create(uow, ADMIN, hot_lead("D1", phone="13800000041"), now)
            # A clock due in seconds rather than business hours, so the test runs in real time.
            await uow.session.execute(
                update(LeadRow)
                .where(LeadRow.lead_id == "D1")
                .values(
                    sla_start=now,
                    sla_reminder=now + timedelta(seconds=6),
                    sla_due=now + timedelta(seconds=60),
                )
            )
            return res

        res = await transactions(db).run("demo", create)
        owner = res.row.owner_user_id
        handle = temporal_dev.client.get_workflow_handle(workflows.workflow_id("demo", "D1"))
        for _ in range(100):  # the consumer starts the watch from LeadAssigned
            try:
                await handle.describe()
                break
            except Exception:
                await asyncio.sleep(0.1)
        else:
            pytest.fail("LeadAssigned did not start the watch workflow")
        await asyncio.sleep(1.0)
        await first.stop()  # the worker goes away while the workflow waits on its timer
        await asyncio.sleep(7.0)  # the reminder falls due with no worker running
        assert await events(db, "leads.SlaReminderDue") == []
        second = worker(temporal_dev, db, queue)
        for _ in range(150):
            found = await events(db, "leads.SlaReminderDue")
            if found:
                break
            await asyncio.sleep(0.1)
        assert len(found) == 1
        assert unpack_payload(found[0][1], events_pb2.SlaReminderDue).owner_user_id == owner
    finally:
        for stopper in (relay.stop, consumer.stop):
            await stopper()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if second is not None:
            await second.stop()
        await first.stop()
        await redis.aclose()
        await db.dispose()


async def test_reminder_survives_a_temporal_restart(sqlite_url: str, tmp_path: Path) -> None:
    """Temporal itself is killed (SIGKILL) while the watch waits; restarted on its database, the timer fires."""
    port = free_port()
    server = start_temporal_dev(tmp_path / "temporal.db", port)  # as `make run` starts it
    db = Database(sqlite_url)
    await upgrade_to_head("leads", db)
    await configure_core(db)
    client = await connect(server.address, retry_for=30)
    queue = f"leads-{uuid.uuid4().hex[:8]}"
    acts = activities.WatchActivities(db)
    runner = WorkerRunner(
        build_worker(
            client,
            queue,
            workflows=[workflows.LeadWatchWorkflow],
            activities=[acts.next_timer, acts.fire],
            options=SPEC.worker_options,
        )
    )
    runner.start()
    try:
        now = datetime.now(UTC)

        async def create(uow: UnitOfWork) -> IntakeResult:
            res = await intake.create(uow, ADMIN, hot_lead("T1", phone="13800000042"), now)
            await uow.session.execute(
                update(LeadRow)
                .where(LeadRow.lead_id == "T1")
                .values(
                    sla_start=now,
                    sla_reminder=now + timedelta(seconds=8),
                    sla_due=now + timedelta(seconds=90),
                )
            )
            return res

        res = await transactions(db).run("demo", create)
        await consumers.poke(client, queue, "demo", "T1")
        handle = client.get_workflow_handle(workflows.workflow_id("demo", "T1"))
        await handle.describe()
        await asyncio.sleep(1.0)
        # make run's server writes ahead (WAL, deploy.local.infra.temporal_command): the kill must not lose it
        assert (tmp_path / "temporal.db-wal").exists()
        server.proc.kill()  # no graceful shutdown: the server's state is what its database holds
        server.proc.wait(10)
        await asyncio.sleep(2.0)
        assert await events(db, "leads.SlaReminderDue") == []  # not due yet when Temporal died
        server = start_temporal_dev(tmp_path / "temporal.db", port)
        found: list[Any] = []
        for _ in range(300):
            found = await events(db, "leads.SlaReminderDue")
            if found:
                break
            await asyncio.sleep(0.1)
        assert len(found) == 1, "the reminder did not come after Temporal restarted"
        assert unpack_payload(found[0][1], events_pb2.SlaReminderDue).owner_user_id == res.row.owner_user_id
    finally:
        await runner.stop()
        server.stop()
        await db.dispose()
