"""Event-table housekeeping as a Temporal schedule, one per service: the only place retention lives.

Published outbox rows and processed-event ids are only needed for a retention
window (redelivery after that is impossible: the stream is trimmed long
before). A schedule, not a loop in some process, so it runs exactly once per
period whichever workers are alive.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, delete, select
from temporalio import activity, workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)
from temporalio.common import RetryPolicy

from kit.db import Database


@dataclass
class PurgeRequest:
    # Published outbox rows are only kept for inspection and manual replay.
    outbox_retention_days: int = 7
    # The de-duplication window: a copy of an event arriving after its id was
    # purged would apply again, so keep it far longer than any redelivery path.
    processed_retention_days: int = 30
    chunk: int = 5000


@dataclass
class PurgeResult:
    outbox_rows: int
    processed_ids: int


class EventTablePurger:
    """Activity host: deletes old published outbox rows and processed-event ids in chunks."""

    def __init__(self, db: Database, outbox: Table, processed: Table) -> None:
        self.db = db
        self.outbox = outbox
        self.processed = processed

    async def _purge(self, table: Table, time_column: str, key: str, cutoff: datetime, chunk: int) -> int:
        when, key_col = table.c[time_column], table.c[key]
        removed = 0
        while True:
            activity.heartbeat(removed)
            doomed = select(key_col).where(when < cutoff).limit(chunk).scalar_subquery()
            async with self.db.system_session() as session:
                result = await session.execute(delete(table).where(key_col.in_(doomed), when < cutoff))
                await session.commit()
            count = int(getattr(result, "rowcount", 0) or 0)
            removed += count
            if count < chunk:
                return removed

    @activity.defn(name="purge_event_tables")
    async def purge(self, request: PurgeRequest) -> PurgeResult:
        now = datetime.now(UTC)
        outbox = await self._purge(
            self.outbox,
            "published_at",
            "id",
            now - timedelta(days=request.outbox_retention_days),
            request.chunk,
        )
        processed = await self._purge(
            self.processed,
            "processed_at",
            "event_id",
            now - timedelta(days=request.processed_retention_days),
            request.chunk,
        )
        return PurgeResult(outbox, processed)


@workflow.defn(name="Housekeeping")
class HousekeepingWorkflow:
    @workflow.run
    async def run(self, request: PurgeRequest) -> PurgeResult:
        result: PurgeResult = await workflow.execute_activity(
            "purge_event_tables",
            request,
            result_type=PurgeResult,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5), maximum_attempts=5),
        )
        return result


def schedule_id(service: str) -> str:
    return f"housekeeping/{service}"


async def ensure_schedule(
    client: Client, service: str, task_queue: str, *, every: timedelta = timedelta(hours=6)
) -> None:
    """Create the service's schedule once; a second worker finding it is fine."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            HousekeepingWorkflow.run,
            PurgeRequest(),
            id=f"housekeeping-run/{service}",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await client.create_schedule(schedule_id(service), schedule)
