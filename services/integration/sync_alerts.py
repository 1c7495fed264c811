"""Lag alerts: opened, kept and resolved with the run that moves the lag; explanations. Never commit.

The alert asks the job's owner (else the connector's owner) to explain; notify
turns `integration.SyncLagDetected` into an inbox item for them and
`integration.SyncRecovered` resolves it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from ulid import ULID

from kit.auth import Principal
from kit.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound, PermissionDenied
from kit.resources import UnitOfWork
from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import events_pb2 as ev
from salesops.integration.v1 import sync_pb2 as s
from services.integration import integration_settings
from services.integration.domain import sync as rules
from services.integration.repositories.sync import SyncLagAlerts, SyncLagRequests
from services.integration.store import ConnectorRow
from services.integration.store_sync import SyncJobRow, SyncLagAlertRow, SyncLagRequestRow


def progress(job: SyncJobRow) -> rules.Progress:
    return rules.Progress(
        created_at=job.created_at,
        complete_until=job.complete_until,
        completed_once=job.last_success_at is not None,
        source_exhausted=job.source_exhausted,
        last_fetched=job.last_fetched,
        last_progress=job.last_progress,
        consecutive_failures=job.consecutive_failures,
        last_error=job.last_error,
    )


def _dur(delta: timedelta) -> Duration:
    d = Duration()
    d.FromTimedelta(delta)
    return d


def _ts(at: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(at)
    return t


def asked(job: SyncJobRow, conn: ConnectorRow) -> list[str]:
    """Who explains: the job's owner, else the connector's, else the admin who made the job
    (owners of the deals concerned need pipeline's deals by external record: not yet)."""
    owner = job.owner_user_id or c.Connector.FromString(conn.body).owner_user_id or job.created_by
    return [owner] if owner else []


async def evaluate(uow: UnitOfWork, job: SyncJobRow, conn: ConnectorRow, at: datetime) -> None:
    """Open, keep or resolve the job's lag alert by its lag now (called in a run's transaction)."""
    p = progress(job)
    lag = rules.lag(p, at)
    policy = await integration_settings.get(uow)
    default = integration_settings.duration(policy, "default_lag_alert_threshold")
    threshold = timedelta(seconds=job.threshold_seconds) if job.threshold_seconds > 0 else default
    window = integration_settings.duration(policy, "lag_explanation_window")
    move = rules.alert_move(lag, threshold, bool(job.open_lag_alert_id))
    alerts = SyncLagAlerts(uow)
    if move is rules.AlertMove.OPEN:
        status, _ = rules.status(p)
        alert = SyncLagAlertRow(
            alert_id=str(ULID()),
            sync_job_id=job.sync_job_id,
            connector_id=job.connector_id,
            data_kind=job.data_kind,
            state=s.LAG_ALERT_STATE_OPEN,
            status_at_detection=status.value,
            threshold_seconds=int(threshold.total_seconds()),
            lag_seconds=int(lag.total_seconds()),
            max_lag_seconds=int(lag.total_seconds()),
            last_success_at=job.last_success_at,
            detected_at=at,
        )
        await alerts.add(alert)
        users = asked(job, conn)
        requests = SyncLagRequests(uow)
        for user in users:
            await requests.add(
                SyncLagRequestRow(
                    alert_id=alert.alert_id,
                    user_id=user,
                    deal_ids="",
                    requested_at=at,
                    due_at=at + window,
                    reason=0,
                    text="",
                )
            )
        job.open_lag_alert_id = alert.alert_id
        detected = ev.SyncLagDetected(
            alert_id=alert.alert_id,
            sync_job_id=job.sync_job_id,
            connector_id=job.connector_id,
            data_kind=job.data_kind,  # type: ignore[arg-type]
            lag=_dur(lag),
            threshold=_dur(threshold),
            detect_time=_ts(at),
            explanation_requests=[
                s.LagExplanationRequest(user_id=u, request_time=_ts(at), due_time=_ts(at + window))
                for u in users
            ],
            owner_user_id=job.owner_user_id or (users[0] if users else ""),
            requested_user_ids=users,
        )
        if job.last_success_at is not None:
            detected.last_success_time.CopyFrom(_ts(job.last_success_at))
        await uow.emit("integration.SyncLagDetected", detected, subject=job.sync_job_id)
    elif move is rules.AlertMove.KEEP:
        alert_row = await alerts.find(job.open_lag_alert_id)
        if alert_row is not None:
            alert_row.max_lag_seconds = max(alert_row.max_lag_seconds, int(lag.total_seconds()))
    elif move is rules.AlertMove.RESOLVE:
        alert_row = await alerts.find(job.open_lag_alert_id)
        job.open_lag_alert_id = ""
        if alert_row is None:
            return
        alert_row.state, alert_row.resolved_at = s.LAG_ALERT_STATE_RESOLVED, at
        reqs = (await SyncLagRequests(uow).of_alerts([alert_row.alert_id]))[alert_row.alert_id]
        recovered = ev.SyncRecovered(
            alert_id=alert_row.alert_id,
            sync_job_id=job.sync_job_id,
            connector_id=job.connector_id,
            data_kind=job.data_kind,  # type: ignore[arg-type]
            alert_duration=_dur(at - (rules.aware(alert_row.detected_at) or at)),
            max_lag=_dur(timedelta(seconds=alert_row.max_lag_seconds)),
            recover_time=_ts(at),
            missing_explanations=sum(1 for r in reqs if r.explained_at is None),
            owner_user_id=job.owner_user_id,
            requested_user_ids=[r.user_id for r in reqs],
        )
        if job.last_success_at is not None:
            recovered.last_success_time.CopyFrom(_ts(job.last_success_at))
        await uow.emit("integration.SyncRecovered", recovered, subject=job.sync_job_id)


async def visible_alert(uow: UnitOfWork, who: Principal, alert_id: str) -> SyncLagAlertRow:
    """Admins see every alert; others only those asking them (else NOT_FOUND: nothing to learn)."""
    alert = await SyncLagAlerts(uow).get(alert_id)
    if not who.is_admin and await SyncLagRequests(uow).find(alert_id, who.user_id) is None:
        raise NotFound("integration.SyncLagAlert", alert_id)
    return alert


async def explain(
    uow: UnitOfWork, who: Principal, alert_id: str, explanation: s.LagExplanation, at: datetime
) -> SyncLagAlertRow:
    problems = []
    if not explanation.reason or explanation.reason not in s.LagReason.values():
        problems.append(FieldViolation("explanation.reason", "required"))
    if not explanation.text.strip() or len(explanation.text) > 1000:
        problems.append(FieldViolation("explanation.text", "required, at most 1,000 characters"))
    if problems:
        raise InvalidArgument("invalid explanation", problems)
    alert = await SyncLagAlerts(uow).get(alert_id)
    requests = SyncLagRequests(uow)
    mine = await requests.find(alert_id, who.user_id)
    if mine is None:
        if not who.is_admin:
            raise NotFound("integration.SyncLagAlert", alert_id)
        raise PermissionDenied("you were not asked to explain this lag", reason="NOT_ASKED")
    if alert.state == s.LAG_ALERT_STATE_RESOLVED:
        raise FailedPrecondition("the sync caught up; the alert is resolved", reason="ALERT_RESOLVED")
    mine.reason, mine.text, mine.explained_at = explanation.reason, explanation.text.strip(), at
    await uow.session.flush()
    pending = [r for r in (await requests.of_alerts([alert_id]))[alert_id] if r.explained_at is None]
    alert.state = s.LAG_ALERT_STATE_OPEN if pending else s.LAG_ALERT_STATE_EXPLAINED
    return alert
