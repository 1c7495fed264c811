"""Proto enums and messages <-> the names and rows the service stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from kit.errors import InvalidArgument
from salesops.common.v1 import types_pb2
from salesops.notify.v1 import inbox_pb2, notification_pb2
from services.notify.store import InboxItemRow, NotificationRow

_CAT_PREFIX = "NOTIFICATION_CATEGORY_"
# A Timestamp may name any second up to year 9999 and beyond; past what datetime holds (or
# with a timedelta added) it overflows, which answered INTERNAL. Requests stay in this range.
MIN_YEAR, MAX_YEAR = 1900, 2999
MAX_SPAN = timedelta(days=366)


def request_time(value: Timestamp, field: str) -> datetime:
    """A request's time as an aware datetime, INVALID_ARGUMENT outside MIN_YEAR..MAX_YEAR."""
    try:
        when: datetime | None = value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        when = None
    if when is None or not MIN_YEAR <= when.year <= MAX_YEAR:
        raise InvalidArgument.field(field, f"a time between {MIN_YEAR} and {MAX_YEAR}")
    return when


def request_span(value: Duration, field: str) -> timedelta:
    """A request's window or timeout, INVALID_ARGUMENT if negative or over MAX_SPAN."""
    if value.seconds < 0 or value.nanos < 0 or value.seconds > MAX_SPAN.total_seconds():
        raise InvalidArgument.field(field, f"between 0 and {MAX_SPAN.days} days")
    return value.ToTimedelta()


def check_request_times(n: notification_pb2.Notification) -> None:
    """Every time and span of a notification to send within range (before any arithmetic on them)."""
    for name in ("due_time", "expire_time"):
        if n.HasField(name):
            request_time(getattr(n, name), f"notification.{name}")
    if n.HasField("dedupe_window"):
        request_span(n.dedupe_window, "notification.dedupe_window")
    if n.ack.HasField("ack_timeout"):
        request_span(n.ack.ack_timeout, "notification.ack.ack_timeout")


def category_key(value: int) -> str:
    """NOTIFICATION_CATEGORY_SLA_BREACH -> "sla_breach"."""
    return notification_pb2.NotificationCategory.Name(value)[len(_CAT_PREFIX) :].lower()  # type: ignore[arg-type]


def category_enum(key: str) -> int:
    return int(notification_pb2.NotificationCategory.Value(_CAT_PREFIX + key.upper()))


def role_name(value: int) -> str:
    return types_pb2.Role.Name(value)[len("ROLE_") :].lower()  # type: ignore[arg-type]


def role_enum(name: str) -> int:
    return int(types_pb2.Role.Value("ROLE_" + name.upper()))


def ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    out = Timestamp()
    out.FromDatetime(aware(value))
    return out


def aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns: they are UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def inbox_item(row: InboxItemRow | Any, escalation_state: int = 0) -> inbox_pb2.InboxItem:
    """An item from a stored row, or from the row values a fan-out just inserted."""
    item = inbox_pb2.InboxItem(
        item_id=row.id,
        notification_id=row.notification_id,
        category=category_enum(row.category),  # type: ignore[arg-type]
        priority=row.priority,  # type: ignore[arg-type]
        title=row.title,
        body=row.body,
        locale=row.locale,
        action_url=row.action_url,
        read=row.read_at is not None,
        ack_required=row.ack_required,
        escalation_state=escalation_state,  # type: ignore[arg-type]
        escalation_level=row.escalation_level,
        escalated_from_user_ids=[u for u in row.escalated_from.split(",") if u],
        state=row.state,  # type: ignore[arg-type]
    )
    if row.subject_id:
        item.subject.CopyFrom(
            types_pb2.ResourceRef(service=row.subject_service, kind=row.subject_kind, id=row.subject_id)
        )
    for name, value in (
        ("due_time", row.due_time),
        ("read_time", row.read_at),
        ("ack_deadline", row.ack_deadline),
        ("create_time", row.created_at),
    ):
        stamp = ts(value)
        if stamp is not None:
            getattr(item, name).CopyFrom(stamp)
    return item


def notification(row: NotificationRow) -> notification_pb2.Notification:
    """The notification as stored, with the state columns that change after the send."""
    n = notification_pb2.Notification.FromString(row.payload)
    n.state = row.state  # type: ignore[assignment]
    n.escalation.state = row.escalation_state  # type: ignore[assignment]
    n.escalation.current_level = row.escalation_level
    if row.acknowledged_by:
        n.escalation.acknowledged_by = row.acknowledged_by
    if row.ack_at is not None:
        n.escalation.ack_time.FromDatetime(aware(row.ack_at))
    return n
