"""Sync job use cases: create, update, delete. Never commit; schedules are made after the commit
(`sync_schedules`), from what the committed row says."""

from __future__ import annotations

import hashlib
from datetime import datetime

from google.protobuf.field_mask_pb2 import FieldMask

from kit.auth import Principal
from kit.errors import AlreadyExists, FieldViolation, InvalidArgument
from kit.resources import UnitOfWork, merge_update, sanitize_create
from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import sync_pb2 as s
from services.integration.domain import sync as rules
from services.integration.repositories.connectors import Connectors
from services.integration.repositories.sync import SyncJobs, SyncLagAlerts
from services.integration.store import ConnectorRow
from services.integration.store_sync import SyncJobRow

UPDATABLE = ("display_name", "schedule", "paused", "lag_alert_threshold", "owner_user_id")


def config(row: SyncJobRow) -> s.SyncJob:
    """The job's configuration as the contract has it (state fields are the presenter's)."""
    job = s.SyncJob(
        sync_job_id=row.sync_job_id,
        connector_id=row.connector_id,
        data_kind=row.data_kind,  # type: ignore[arg-type]
        display_name=row.display_name,
        schedule=s.SyncSchedule.FromString(row.schedule),
        paused=row.paused,
        owner_user_id=row.owner_user_id,
    )
    if row.threshold_seconds:
        job.lag_alert_threshold.FromSeconds(row.threshold_seconds)
    return job


def _validate(job: s.SyncJob, conn: ConnectorRow | None) -> None:
    problems: list[tuple[str, str]] = []
    if not job.sync_job_id:
        problems.append(("sync_job_id", "required (a client-made ULID)"))
    elif len(job.sync_job_id) > 64 or not job.sync_job_id.replace("-", "").replace("_", "").isalnum():
        problems.append(("sync_job_id", "at most 64 letters, digits, '-' or '_'"))
    if not job.connector_id:
        problems.append(("connector_id", "required"))
    if conn is not None:
        why = rules.kind_problem(conn.kind, job.data_kind)
        if why:
            problems.append(("data_kind", why))
    elif not job.data_kind:
        problems.append(("data_kind", "required"))
    bad = rules.schedule_problem(job.schedule)
    if bad:
        problems.append(bad)
    if job.HasField("lag_alert_threshold") and not (
        3600 <= job.lag_alert_threshold.ToTimedelta().total_seconds() <= 30 * 86400
    ):
        problems.append(("lag_alert_threshold", "between 1 hour and 30 days"))
    if len(job.display_name) > 200:
        problems.append(("display_name", "at most 200 characters"))
    if len(job.owner_user_id) > 128:
        problems.append(("owner_user_id", "at most 128 characters"))
    if problems:
        raise InvalidArgument("invalid sync job", [FieldViolation(f"sync_job.{p}", d) for p, d in problems])


def _apply(row: SyncJobRow, job: s.SyncJob, conn: ConnectorRow) -> None:
    kind = s.SyncDataKind.Name(job.data_kind).removeprefix("SYNC_DATA_KIND_").lower()
    row.display_name = job.display_name.strip() or f"{conn.display_name} / {kind}"
    row.schedule = job.schedule.SerializeToString(deterministic=True)
    row.paused = job.paused
    row.owner_user_id = job.owner_user_id
    row.threshold_seconds = (
        int(job.lag_alert_threshold.ToTimedelta().total_seconds())
        if job.HasField("lag_alert_threshold")
        else 0
    )


async def create_sync_job(
    uow: UnitOfWork, who: Principal, incoming: s.SyncJob, at: datetime
) -> tuple[SyncJobRow, ConnectorRow]:
    job = sanitize_create(incoming)
    conn = await Connectors(uow).find(job.connector_id) if job.connector_id else None
    _validate(job, conn)
    if conn is None:  # another tenant's connector is not there either
        conn = await Connectors(uow).get(job.connector_id)
    digest = hashlib.sha256(job.SerializeToString(deterministic=True)).hexdigest()
    repo = SyncJobs(uow)
    found = await repo.find(job.sync_job_id)
    if found is not None:
        if found.request_digest == digest:
            return found, conn  # a replay of the same create
        raise AlreadyExists("integration.SyncJob", job.sync_job_id)
    if await repo.by_kind(job.connector_id, job.data_kind) is not None:
        raise AlreadyExists(
            "integration.SyncJob", job.sync_job_id, "the connector already has a job for this data kind"
        )
    row = SyncJobRow(
        sync_job_id=job.sync_job_id,
        connector_id=job.connector_id,
        data_kind=job.data_kind,
        cursor="",
        last_run_id="",
        last_run_state=0,
        source_exhausted=False,
        last_fetched=0,
        last_progress=False,
        consecutive_failures=0,
        last_error="",
        running_run_id="",
        open_lag_alert_id="",
        created_at=at,
        created_by=who.user_id,
        updated_at=at,
        updated_by=who.user_id,
        version=1,
        request_digest=digest,
    )
    _apply(row, job, conn)
    await repo.add(row)
    return row, conn


async def update_sync_job(
    uow: UnitOfWork, who: Principal, incoming: s.SyncJob, mask: FieldMask, at: datetime
) -> tuple[SyncJobRow, ConnectorRow]:
    repo = SyncJobs(uow)
    row = await repo.get(incoming.sync_job_id)
    repo.check_etag(row, incoming.etag)
    if not mask.paths:
        raise InvalidArgument.field("update_mask", f"required: some of {', '.join(UPDATABLE)}")
    merged = merge_update(config(row), incoming, mask)  # IMMUTABLE refused, OUTPUT_ONLY ignored
    conn = await Connectors(uow).get(row.connector_id)
    _validate(merged, conn)
    _apply(row, merged, conn)
    row.updated_at, row.updated_by = at, who.user_id
    await repo.update_if_etag(row, incoming.etag)
    return row, conn


async def delete_sync_job(uow: UnitOfWork, who: Principal, sync_job_id: str, etag: str, at: datetime) -> None:
    """The job goes (its runs stay); an open lag alert resolves with it."""
    repo = SyncJobs(uow)
    row = await repo.get(sync_job_id)
    repo.check_etag(row, etag)
    if row.open_lag_alert_id:
        alert = await SyncLagAlerts(uow).find(row.open_lag_alert_id)
        if alert is not None:
            alert.state, alert.resolved_at = s.LAG_ALERT_STATE_RESOLVED, at
    await repo.delete_if_etag(row, etag)


def connector_enabled(conn: ConnectorRow) -> bool:
    return conn.state == c.CONNECTOR_STATE_ENABLED
