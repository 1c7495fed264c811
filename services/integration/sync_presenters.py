"""What a viewer sees of sync jobs, runs and lag alerts: the one place deciding it.

Lag and status are computed when read (now - complete-until), so a job whose
runs stopped shows its lag growing without a write.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.rpc import status_pb2

from kit.auth import Principal
from salesops.common.v1.types_pb2 import Audit
from salesops.integration.v1 import sync_pb2 as s
from services.integration import sync_alerts, sync_jobs
from services.integration.domain import sync as rules
from services.integration.presenters import enum, stamp, ts
from services.integration.store_sync import SyncJobRow, SyncLagAlertRow, SyncLagRequestRow, SyncRunRow


def _dur(delta: timedelta) -> Duration:
    d = Duration()
    d.FromTimedelta(delta)
    return d


class SyncJobPresenter:
    def present(
        self, viewer: Principal, row: SyncJobRow, now: datetime, next_run: datetime | None = None
    ) -> s.SyncJob:
        msg = sync_jobs.config(row)
        p = sync_alerts.progress(row)
        status, reason = rules.status(p)
        msg.cursor, msg.last_run_id, msg.last_run_state = (
            row.cursor,
            row.last_run_id,
            enum(row.last_run_state),
        )
        if row.last_success_at is not None:
            msg.last_success_time.CopyFrom(stamp(row.last_success_at))
        if row.newest_record_at is not None:
            msg.newest_record_time.CopyFrom(stamp(row.newest_record_at))
        if next_run is not None:
            msg.next_run_time.CopyFrom(stamp(next_run))
        msg.lag.CopyFrom(_dur(rules.lag(p, now)))
        msg.open_lag_alert_id = row.open_lag_alert_id
        msg.status, msg.status_reason = enum(status.value), reason
        msg.consecutive_failures = row.consecutive_failures
        msg.etag = str(row.version)
        msg.audit.CopyFrom(
            Audit(
                create_time=ts(row.created_at),
                update_time=ts(row.updated_at),
                created_by=row.created_by,
                updated_by=row.updated_by,
            )
        )
        return msg


def present_run(row: SyncRunRow, full: bool = True) -> s.SyncRun:
    msg = s.SyncRun(
        run_id=row.run_id,
        sync_job_id=row.sync_job_id,
        connector_id=row.connector_id,
        data_kind=enum(row.data_kind),
        trigger=enum(row.trigger),
        state=enum(row.state),
        start_time=stamp(row.started_at),
        end_time=ts(row.ended_at),
        records_fetched=row.fetched,
        records_created=row.created,
        records_updated=row.updated,
        records_unchanged=row.unchanged,
        records_failed=row.failed,
        events_emitted=row.events,
        cursor_before=row.cursor_before,
        cursor_after=row.cursor_after,
        triggered_by=row.triggered_by,
        newest_record_time=ts(row.newest_record_at),
        source_exhausted=row.source_exhausted,
    )
    if row.error_message:
        msg.error.CopyFrom(status_pb2.Status(code=row.error_code or 14, message=row.error_message))
    if full:  # ListSyncRuns omits record errors (the contract)
        for e in json.loads(row.record_errors or "[]"):
            msg.record_errors.add(external_id=e.get("external_id", ""), message=e.get("message", ""))
    return msg


def present_alert(
    viewer: Principal, row: SyncLagAlertRow, requests: list[SyncLagRequestRow]
) -> s.SyncLagAlert:
    msg = s.SyncLagAlert(
        alert_id=row.alert_id,
        sync_job_id=row.sync_job_id,
        connector_id=row.connector_id,
        data_kind=enum(row.data_kind),
        state=enum(row.state),
        threshold=_dur(timedelta(seconds=row.threshold_seconds)),
        lag_at_detection=_dur(timedelta(seconds=row.lag_seconds)),
        max_lag=_dur(timedelta(seconds=row.max_lag_seconds)),
        last_success_time=ts(row.last_success_at),
        detect_time=stamp(row.detected_at),
        resolve_time=ts(row.resolved_at),
        status_at_detection=enum(row.status_at_detection),
    )
    for r in requests:
        if not viewer.is_admin and r.user_id != viewer.user_id:
            continue  # a rep sees their own request, not what colleagues answered
        req = msg.explanation_requests.add(
            user_id=r.user_id,
            deal_ids=[d for d in r.deal_ids.split(",") if d],
            request_time=stamp(r.requested_at),
            due_time=stamp(r.due_at),
        )
        if r.explained_at is not None:
            req.explanation.CopyFrom(
                s.LagExplanation(reason=enum(r.reason), text=r.text, explain_time=stamp(r.explained_at))
            )
    return msg
