"""The Notification messages consumers.translate builds: the one builder every event's notice goes
through, and the notices that take more than a line to word (overdue feedback, process anomalies,
reconciliation issues, failed webhook deliveries). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from salesops.common.v1 import types_pb2
from salesops.integration.v1 import events_pb2 as integration_events
from salesops.knowledge.v1 import events_pb2 as knowledge_events
from salesops.notify.v1 import notification_pb2
from salesops.pipeline.v1 import events_pb2 as pipeline_events
from salesops.pipeline.v1 import process_health_pb2, reconciliation_pb2

N = notification_pb2


def ts_key(t: Timestamp) -> str:
    return str(t.seconds)


def notification(
    category: int,
    users: list[str],
    variables: Mapping[str, object],
    subject: types_pb2.ResourceRef,
    dedupe: str,
    due: Timestamp | None = None,
) -> notification_pb2.Notification:
    values = Struct()
    values.update(dict(variables))  # type: ignore[arg-type]
    n = N.Notification(
        category=category,  # type: ignore[arg-type]
        recipients=[N.Recipient(user_id=u) for u in dict.fromkeys(users) if u],
        template=N.TemplateContent(variables=values),
        subject=subject,
        dedupe_key=dedupe,
    )
    if due is not None and (due.seconds or due.nanos):
        n.due_time.CopyFrom(due)
    return n


def feedback_overdue(
    e: knowledge_events.FeedbackDue, ref: types_pb2.ResourceRef
) -> notification_pb2.Notification:
    """An overdue feedback duty is visible to the rep's supervisor (resolved in the org tree), once per duty."""
    title = e.card_title or e.card_id
    n = notification(
        N.NOTIFICATION_CATEGORY_ANOMALY,
        [],
        {
            "title": f"Card feedback overdue: {title} ({e.user_id})",
            "message": f"{e.user_id} has not rated the SOP card {title} used on {ref.kind} {ref.id}.",
        },
        ref,
        f"feedback_overdue:{e.use_id}",
    )
    n.recipients.add().manager.CopyFrom(N.ManagerTarget(user_id=e.user_id, role=types_pb2.ROLE_SUPERVISOR))
    return n


def _day(d: Any) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def process_anomaly(e: pipeline_events.ProcessAnomalyDetected) -> notification_pb2.Notification:
    v = e.value
    metric = process_health_pb2.ProcessMetric.Name(v.metric).removeprefix("PROCESS_METRIC_")
    label = metric.replace("_", " ").lower() + (f" ({v.stage_id})" if v.stage_id else "")
    week = _day(e.period.start_date)
    message = (
        f"{label} was {v.value:.3g} in the week of {week}, outside the team's usual "
        f"{v.lower_bound:.3g} to {v.upper_bound:.3g} (mean {v.baseline_mean:.3g} over "
        f"{v.baseline_periods} weeks, z {e.z_score:+.1f})" + ("; worse than usual." if e.adverse else ".")
    )
    return notification(
        N.NOTIFICATION_CATEGORY_ANOMALY,
        [e.manager_user_id],
        {"title": f"{e.org_path or 'company'}: {label} {v.value:.3g}", "message": message},
        types_pb2.ResourceRef(service="pipeline", kind="process_anomaly", id=e.anomaly_id),
        f"process_anomaly:{e.org_path}:{week}:{metric}:{v.stage_id}",
    )


def _money(m: types_pb2.Money) -> str:
    return f"{m.amount_minor / 100:,.2f} {m.currency}"


def reconciliation(e: pipeline_events.ReconciliationIssueRaised) -> notification_pb2.Notification:
    what = reconciliation_pb2.ReconciliationIssueKind.Name(e.kind).removeprefix("RECONCILIATION_ISSUE_KIND_")
    label = what.replace("_", " ").lower()
    deal = e.deal_title or e.deal_id
    parts = [f"Deal {deal}: {label}. Please explain or resolve it."]
    if e.HasField("expected_amount") and e.HasField("actual_amount"):
        parts.append(f"Expected {_money(e.expected_amount)}, actual {_money(e.actual_amount)}.")
    if e.HasField("due_date"):
        parts.append(f"Due {_day(e.due_date)}.")
    return notification(
        N.NOTIFICATION_CATEGORY_ANOMALY,
        [e.owner_user_id],
        {"title": f"{deal}: {label}", "message": " ".join(parts)},
        types_pb2.ResourceRef(service="pipeline", kind="reconciliation_issue", id=e.issue_id),
        f"reconciliation:{e.issue_id}",
    )


def webhook_failed(e: integration_events.WebhookDeliveryFailed) -> notification_pb2.Notification:
    """Tells a subscription's owner that a delivery was dead-lettered, or that the subscription was suspended."""
    answer = f"HTTP {e.last_http_status}" if e.last_http_status else (e.last_error or "no answer")
    if e.subscription_suspended:
        title = f"Webhook subscription {e.subscription_name} suspended"
        message = (
            f"Deliveries to {e.endpoint_host} keep failing (last: {answer}); the subscription is suspended. "
            f"Fix the endpoint, enable it, then replay its dead letters."
        )
        dedupe = f"webhook_suspended:{e.subscription_id}:{e.delivery_id}"
    else:
        title = f"Webhook delivery to {e.endpoint_host} failed"
        message = (
            f"{e.event_type} ({e.event_id}) was not accepted after {e.attempt_count} attempts (last: {answer}); "
            f"it is kept as a dead letter of {e.subscription_name} for replay."
        )
        dedupe = f"webhook_dead_letter:{e.delivery_id}"
    return notification(
        N.NOTIFICATION_CATEGORY_SYSTEM,
        [e.owner_user_id],
        {"title": title, "message": message},
        types_pb2.ResourceRef(service="integration", kind="webhook_subscription", id=e.subscription_id),
        dedupe,
    )


__all__ = [
    "feedback_overdue",
    "notification",
    "process_anomaly",
    "reconciliation",
    "ts_key",
    "webhook_failed",
]
