"""What admins see of outbound subscriptions and deliveries: the one place deciding it.

Never a secret: the stored body has it cleared; only a 4-character hint of a `v1`
secret, and for `v1a` the public keys (public by nature).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from google.protobuf.duration_pb2 import Duration

from kit.auth import Principal
from salesops.common.v1.types_pb2 import Audit
from salesops.integration.v1 import webhooks_pb2 as wh
from services.integration.delivery_attempts import Answered
from services.integration.domain.outbound import aware
from services.integration.presenters import enum, stamp, ts
from services.integration.store_outbound import (
    WebhookAttemptRow,
    WebhookDeliveryRow,
    WebhookSubscriptionChangeRow,
    WebhookSubscriptionRow,
)
from services.integration.subscriptions import as_message


def present_subscription(
    viewer: Principal, row: WebhookSubscriptionRow, at: datetime
) -> wh.WebhookSubscription:
    msg = as_message(row)
    msg.ClearField("signing_secret")
    msg.signing_secret_hint = row.secret_hint
    msg.verification_public_key = row.public_key
    until = aware(row.previous_expires_at)
    if row.sealed_previous_secret and until is not None and until > at:
        msg.previous_secret_expire_time.CopyFrom(stamp(until))
        msg.previous_verification_public_key = row.previous_public_key
    msg.state, msg.state_reason = enum(row.state), row.state_reason
    msg.consecutive_failures = row.consecutive_failures
    for field, value in (
        ("last_success_time", row.last_success_at),
        ("last_failure_time", row.last_failure_at),
        ("failing_since_time", row.failing_since),
    ):
        if value is not None:
            getattr(msg, field).CopyFrom(stamp(value))
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


def present_attempt(row: WebhookAttemptRow) -> wh.DeliveryAttempt:
    duration = Duration()
    duration.FromMilliseconds(row.duration_ms)
    return wh.DeliveryAttempt(
        attempt_number=row.attempt_number,
        start_time=ts(row.started_at),
        duration=duration,
        http_status=row.http_status,
        error=row.error,
        response_excerpt=row.response_excerpt,
    )


def present_delivery(row: WebhookDeliveryRow, attempts: Sequence[WebhookAttemptRow]) -> wh.WebhookDelivery:
    msg = wh.WebhookDelivery(
        delivery_id=row.delivery_id,
        subscription_id=row.subscription_id,
        event_id=row.event_id,
        event_type=row.event_type,
        event_time=ts(row.event_time),
        state=enum(row.state),
        attempt_count=row.attempt_count,
        replay_of_delivery_id=row.replay_of,
        create_time=ts(row.created_at),
        attempts=[present_attempt(a) for a in attempts],
    )
    if row.next_attempt_at is not None and row.state == wh.DELIVERY_STATE_RETRY_SCHEDULED:
        msg.next_attempt_time.CopyFrom(stamp(row.next_attempt_at))
    if row.dead_letter_at is not None:
        msg.dead_letter_time.CopyFrom(stamp(row.dead_letter_at))
    return msg


def present_answer(answer: Answered) -> wh.DeliveryAttempt:
    """A test ping's one attempt (never stored)."""
    duration = Duration()
    duration.FromMilliseconds(answer.duration_ms)
    return wh.DeliveryAttempt(
        attempt_number=1,
        start_time=ts(answer.started_at),
        duration=duration,
        http_status=answer.status,
        error=answer.error,
        response_excerpt=answer.excerpt,
    )


def present_change(row: WebhookSubscriptionChangeRow) -> wh.WebhookSubscriptionChange:
    return wh.WebhookSubscriptionChange(
        change_id=row.change_id,
        subscription_id=row.subscription_id,
        action=row.action,
        fields=[f for f in row.fields.split(",") if f],
        reason=row.reason,
        changed_by=row.changed_by,
        change_time=ts(row.changed_at),
    )
