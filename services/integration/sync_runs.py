"""Sync run use cases, one transaction each: begin, apply a page, finish, fail. Never commit.

`apply_page` is where durability is decided: the page's records are mapped to
domain events staged in the outbox, remembered in `sync_records`, and the job's
cursor moves past them, all in one transaction. If anything in it fails,
nothing of the page is kept and the cursor stays where it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.protobuf import json_format
from ulid import ULID

from kit.errors import FailedPrecondition
from kit.resources import UnitOfWork
from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import events_pb2 as ev
from salesops.integration.v1 import sync_pb2 as s
from services.integration import links, sync_alerts
from services.integration.connectors import unsealed_secrets
from services.integration.domain import sync as rules
from services.integration.domain.mapping import MappingError, map_event
from services.integration.domain.providers import effective_settings
from services.integration.repositories.connectors import Connectors
from services.integration.repositories.sync import SyncJobs, SyncRecords, SyncRuns
from services.integration.store_sync import SyncRecordRow, SyncRunRow

RUNNING = s.SYNC_RUN_STATE_RUNNING


@dataclass
class Plan:
    """What a run needs to read the source, taken in `begin` (no transaction open while reading)."""

    run_id: str
    new: bool  # False: the run was already going (returned as it is) or there is nothing to run
    skipped: str = ""
    collection: str = ""
    data_kind: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    cursor: str = ""


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


async def begin(
    uow: UnitOfWork,
    sync_job_id: str,
    trigger: int,
    by: str,
    at: datetime,
    *,
    run_id: str = "",
    resync_since: datetime | None = None,
) -> tuple[SyncRunRow | None, Plan]:
    """The run to go on with: `run_id`'s, a new one, or the one already running (at most one per job)."""
    jobs, runs = SyncJobs(uow), SyncRuns(uow)
    job = await jobs.get(sync_job_id)
    conn = await Connectors(uow).get(job.connector_id)
    if run_id:
        run = await runs.get(run_id)
        if run.state != RUNNING:
            return run, Plan(run.run_id, new=False, skipped="the run has ended")
    else:
        if job.running_run_id:
            current = await runs.find(job.running_run_id)
            if current is not None and current.state == RUNNING:
                if at - (rules.aware(current.started_at) or at) < rules.ABANDONED_AFTER:
                    return current, Plan(current.run_id, new=False, skipped="a run is in progress")
                _end(current, s.SYNC_RUN_STATE_FAILED, at, 4, "abandoned: no progress for 30 minutes")
        enabled = conn.state == c.CONNECTOR_STATE_ENABLED
        if trigger == s.SYNC_TRIGGER_SCHEDULE and (job.paused or not enabled):
            return None, Plan("", new=False, skipped="paused or connector disabled")
        if not enabled:
            raise FailedPrecondition(
                "enable the connector before running its jobs", reason="CONNECTOR_DISABLED"
            )
        run = SyncRunRow(
            run_id=str(ULID()),
            sync_job_id=job.sync_job_id,
            connector_id=job.connector_id,
            data_kind=job.data_kind,
            trigger=trigger,
            state=RUNNING,
            started_at=at,
            fetched=0,
            created=0,
            updated=0,
            unchanged=0,
            failed=0,
            events=0,
            cursor_before="" if resync_since else job.cursor,
            cursor_after="" if resync_since else job.cursor,
            resync_since=resync_since,
            error_code=0,
            error_message="",
            record_errors="[]",
            triggered_by=by,
            source_exhausted=False,
        )
        await runs.add(run)
        job.running_run_id, job.last_run_id, job.last_run_state = run.run_id, run.run_id, RUNNING
        await jobs.update_if_etag(job, "")  # compare-and-set: two starts race, one wins
    cursor = run.cursor_after
    if not cursor and run.resync_since is not None:
        cursor = rules.Cursor(run.resync_since.isoformat().replace("+00:00", "Z")).encode()
    plan = Plan(
        run.run_id,
        new=True,
        collection=rules.PATHS[job.data_kind],
        data_kind=job.data_kind,
        settings=effective_settings(conn.provider, _settings(conn.body)),
        secrets=unsealed_secrets(conn),
        cursor=cursor,
    )
    return run, plan


def _settings(body: bytes) -> dict[str, Any]:
    return json_format.MessageToDict(c.Connector.FromString(body).settings)


def _end(run: SyncRunRow, state: int, at: datetime, code: int = 0, message: str = "") -> None:
    run.state, run.ended_at, run.error_code, run.error_message = state, at, code, message[:500]


async def apply_page(
    uow: UnitOfWork, run_id: str, records: list[dict[str, Any]], at: datetime
) -> tuple[bool, str]:
    """Map and stage the page's records, remember them, move the cursor past them.

    Returns (the run still going, the cursor after the page)."""
    runs, jobs = SyncRuns(uow), SyncJobs(uow)
    run = await runs.get(run_id)
    if run.state != RUNNING:
        return False, run.cursor_after
    job = await jobs.get(run.sync_job_id)
    conn = await Connectors(uow).get(run.connector_id)
    held = await SyncRecords(uow).held(
        run.connector_id, run.data_kind, [str(r.get("external_id", "")) for r in records]
    )
    errors: list[dict[str, str]] = json.loads(run.record_errors or "[]")
    cursor = rules.Cursor.decode(run.cursor_after)
    newest = rules.aware(run.newest_record_at)
    for record in records:
        external_id = str(record.get("external_id") or "")[:256]
        updated = _time(record.get("updated_at"))
        run.fetched += 1
        if not external_id or updated is None:
            run.failed += 1
            if len(errors) < rules.MAX_RECORD_ERRORS:
                errors.append(
                    {"external_id": external_id, "message": "external_id and updated_at are required"}
                )
            continue
        cursor = rules.Cursor(str(record["updated_at"]), external_id)
        newest = updated if newest is None or updated > newest else newest
        known = held.get(external_id)
        verdict = rules.compare(
            rules.aware(known.source_updated_at) if known else None, known is not None, updated
        )
        if verdict.outcome == "unchanged":
            run.unchanged += 1
            continue
        try:
            emitted = await _emit(uow, conn.connector_id, conn.provider, run, record)
        except MappingError as exc:
            run.failed += 1
            if len(errors) < rules.MAX_RECORD_ERRORS:
                errors.append({"external_id": external_id, "message": str(exc)[:300]})
            continue
        run.events += emitted
        run.created += verdict.outcome == "created"
        run.updated += verdict.outcome == "updated"
        body = json.dumps(record, ensure_ascii=False) if run.data_kind == s.SYNC_DATA_KIND_STOCK else ""
        if known is None:
            held[external_id] = await SyncRecords(uow).add(
                SyncRecordRow(
                    connector_id=run.connector_id,
                    data_kind=run.data_kind,
                    external_id=external_id,
                    source_updated_at=updated,
                    synced_at=at,
                    run_id=run.run_id,
                    body=body,
                )
            )
        else:
            known.source_updated_at, known.synced_at, known.run_id, known.body = updated, at, run.run_id, body
    run.record_errors = json.dumps(errors, ensure_ascii=False)
    run.cursor_after, run.newest_record_at = cursor.encode(), newest
    job.cursor = run.cursor_after
    if newest is not None:
        job.newest_record_at = rules.later(job.newest_record_at, newest)
        # Records come in change-time order: everything up to the newest of this page is in.
        job.complete_until = rules.later(job.complete_until, newest)
    await jobs.update_if_etag(job, "")
    return True, run.cursor_after


async def _emit(
    uow: UnitOfWork, connector_id: str, provider: str, run: SyncRunRow, record: dict[str, Any]
) -> int:
    mapped = rules.MAPPED.get(run.data_kind)
    if mapped is None:  # STOCK: kept as the snapshot CheckStock falls back to; no event
        return 0
    origin = ev.DataOrigin(
        connector_id=connector_id, provider=provider, channel=ev.DATA_CHANNEL_SYNC, sync_run_id=run.run_id
    )
    event_type, event, subject = map_event(
        mapped, {"data": record}, connector_id=connector_id, provider=provider, origin=origin
    )
    fields = event.DESCRIPTOR.fields_by_name
    refs = [getattr(event, n) for n in ("payment", "invoice", "contract", "shipment", "order") if n in fields]
    await links.resolve(uow, event, *refs)
    await uow.emit(event_type, event, subject=getattr(event, "deal_id", "") or subject)
    return 1


async def finish(uow: UnitOfWork, run_id: str, exhausted: bool, progressed: bool, at: datetime) -> SyncRunRow:
    """The run completed: SUCCEEDED (PARTIAL with failed records); the job's lag and alert move."""
    run = await SyncRuns(uow).get(run_id)
    if run.state != RUNNING:
        return run
    job = await SyncJobs(uow).get(run.sync_job_id)
    conn = await Connectors(uow).get(run.connector_id)
    _end(run, s.SYNC_RUN_STATE_PARTIAL if run.failed else s.SYNC_RUN_STATE_SUCCEEDED, at)
    run.source_exhausted = exhausted
    job.last_success_at, job.last_run_state = at, run.state
    job.consecutive_failures, job.last_error = 0, ""
    job.source_exhausted, job.last_fetched, job.last_progress = exhausted, run.fetched, progressed
    if exhausted:  # the source had nothing newer when this run read its end
        job.complete_until = rules.later(job.complete_until, rules.aware(run.started_at) or at)
    job.running_run_id = ""
    conn.health = c.CONNECTOR_HEALTH_DEGRADED if run.failed else c.CONNECTOR_HEALTH_HEALTHY
    conn.last_success_at = at
    await sync_alerts.evaluate(uow, job, conn, at)
    await SyncJobs(uow).update_if_etag(job, "")
    return run


async def fail(uow: UnitOfWork, run_id: str, message: str, code: int, at: datetime) -> SyncRunRow:
    """The run could not complete: FAILED with the reason; the cursor stays at the last durable page."""
    run = await SyncRuns(uow).get(run_id)
    if run.state != RUNNING:
        return run
    job = await SyncJobs(uow).get(run.sync_job_id)
    conn = await Connectors(uow).get(run.connector_id)
    _end(run, s.SYNC_RUN_STATE_FAILED, at, code, message)
    job.last_run_state, job.running_run_id = run.state, ""
    job.consecutive_failures += 1
    job.last_error = message[:500]
    conn.health, conn.last_error_at = c.CONNECTOR_HEALTH_FAILING, at
    conn.last_error = f"sync {job.sync_job_id}: {message}"[:500]
    await sync_alerts.evaluate(uow, job, conn, at)
    await SyncJobs(uow).update_if_etag(job, "")
    return run
