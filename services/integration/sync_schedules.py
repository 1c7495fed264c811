"""One Temporal schedule per sync job, kept in line with the committed job and its connector.

Made, updated, paused and deleted after the transaction that changed the job
(or its connector's state) commits; `ensure_all` at worker start repairs any
drift (a crash between the commit and the schedule call). Paused = the job is
paused or its connector is disabled. Cron expressions run in UTC until the
tenant's integration settings carry a time zone.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from kit.errors import Unavailable
from kit.resources import Transactions
from kit.runtime import Runtime
from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import sync_pb2 as s
from services.integration.repositories.sync import SyncJobs, jobs_with_connectors
from services.integration.store import ConnectorRow
from services.integration.store_sync import SyncJobRow
from services.integration.sync_workflows import SyncInput, SyncJobRunWorkflow

log = logging.getLogger("salesops.integration.sync")


def schedule_id(tenant: str, sync_job_id: str) -> str:
    return f"integration/sync/{tenant}/{sync_job_id}"


@dataclass(frozen=True)
class Wanted:
    """What a job's schedule should be, read from committed rows."""

    tenant: str
    sync_job_id: str
    schedule: bytes
    paused: bool

    @classmethod
    def of(cls, tenant: str, job: SyncJobRow, conn: ConnectorRow) -> Wanted:
        return cls(
            tenant, job.sync_job_id, job.schedule, job.paused or conn.state != c.CONNECTOR_STATE_ENABLED
        )


def _schedule(w: Wanted, task_queue: str) -> Schedule:
    spec_msg = s.SyncSchedule.FromString(w.schedule)
    if spec_msg.WhichOneof("spec") == "cron":
        spec = ScheduleSpec(cron_expressions=[spec_msg.cron], time_zone_name="UTC")
        note = f"cron {spec_msg.cron}"
    else:
        every = spec_msg.interval.ToTimedelta()
        spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)])
        note = f"every {int(every.total_seconds())}s"
    return Schedule(
        action=ScheduleActionStartWorkflow(
            SyncJobRunWorkflow.run,
            SyncInput(w.tenant, w.sync_job_id, s.SYNC_TRIGGER_SCHEDULE),
            id=f"integration-sync/{w.tenant}/{w.sync_job_id}",
            task_queue=task_queue,
        ),
        spec=spec,
        # A run still going when the next is due: skip it (one run per job at a time).
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(paused=w.paused, note=note),
    )


async def ensure(client: Client, task_queue: str, w: Wanted) -> None:
    """Create the job's schedule, or update it (spec and pause) to what the job says."""
    wanted = _schedule(w, task_queue)
    handle = client.get_schedule_handle(schedule_id(w.tenant, w.sync_job_id))
    try:
        described = await handle.describe()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        with contextlib.suppress(ScheduleAlreadyRunningError):
            await client.create_schedule(schedule_id(w.tenant, w.sync_job_id), wanted)
        return
    state = described.schedule.state
    if state.note == wanted.state.note and state.paused == w.paused:
        return

    def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=wanted)

    await handle.update(update)


async def remove(client: Client, tenant: str, sync_job_id: str) -> None:
    try:
        await client.get_schedule_handle(schedule_id(tenant, sync_job_id)).delete()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise


async def next_run(client: Client, tenant: str, sync_job_id: str) -> datetime | None:
    """The schedule's next start; None when paused or unknown (best effort, for reads)."""
    try:
        described = await client.get_schedule_handle(schedule_id(tenant, sync_job_id)).describe()
    except RPCError:
        return None
    if described.schedule.state.paused or not described.info.next_action_times:
        return None
    return described.info.next_action_times[0]


async def ensure_all(rt: Runtime) -> None:
    """Worker start: every job's schedule as its committed row says."""
    for tenant, job, conn in await jobs_with_connectors(rt.db):
        w = Wanted.of(tenant, job, conn)
        try:
            await ensure(rt.temporal, rt.settings.task_queue, w)
        except RPCError:
            log.exception("could not ensure the schedule of sync job %s/%s", w.tenant, w.sync_job_id)


async def follow_connector(rt: Runtime, tx: Transactions, tenant: str, conn: ConnectorRow) -> None:
    """After a connector is enabled or disabled: its jobs' schedules resume or pause.

    Best effort: a scheduled run also checks the connector, and the worker's start repairs drift."""
    async with tx.read(tenant) as uow:
        jobs = await SyncJobs(uow).of_connector(conn.connector_id)
    if not jobs:
        return
    try:
        client, queue = rt.temporal, rt.settings.task_queue
        for job in jobs:
            await ensure(client, queue, Wanted.of(tenant, job, conn))
    except (RPCError, Unavailable, AttributeError) as exc:
        log.warning("schedules of connector %s not updated yet: %s", conn.connector_id, exc)
