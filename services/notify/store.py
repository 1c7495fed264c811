"""Tables of the notify service (its own database; no other service reads them).

Rich, rarely-queried parts of a record (a Notification's recipients and
content, a Preference, a ChannelConfig) are kept as serialized protos in
`payload`; everything a query filters or sorts on is a column.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.db import NAMING_CONVENTION, TenantScoped
from kit.events import outbox_table, processed_events_table
from kit.resources import settings_tables

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Events leave through the outbox in the same transaction as the change they announce.
outbox = outbox_table(metadata)
# Ids of events this service has applied, so redelivered events apply once.
processed_events = processed_events_table(metadata)
# Tenant settings (NotifySettings) in kit's one versioned store, with history.
settings = settings_tables(metadata)

UTC_TS = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = metadata


class Document:
    """Columns of a resource kept as a serialized proto: the message, its version (the etag)
    and when it last changed; the columns lists filter on sit beside them."""

    version: Mapped[int] = mapped_column(Integer, default=1)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTC_TS)


# Tables keyed by a (client-makeable) string id have composite keys (tenant_id, id):
# ids are unique per tenant, never global, so one tenant's ids cannot collide with another's.


class SubscriberRow(TenantScoped, Base):
    """Notify's own directory: org position, roles, contact addresses of a user."""

    __tablename__ = "notify_subscribers"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str] = mapped_column(String(200))
    org_unit_path: Mapped[str] = mapped_column(String(300), default="")
    roles: Mapped[str] = mapped_column(String(300), default="")  # comma-separated role names
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    phone: Mapped[str] = mapped_column(String(40), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    wecom_user_id: Mapped[str] = mapped_column(String(128), default="")
    dingtalk_user_id: Mapped[str] = mapped_column(String(128), default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTC_TS)


class NotificationRow(TenantScoped, Base):
    __tablename__ = "notify_notifications"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),)
    id: Mapped[str] = mapped_column(String(26))
    category: Mapped[str] = mapped_column(String(40))
    priority: Mapped[int] = mapped_column(Integer)
    dedupe_key: Mapped[str] = mapped_column(String(300), default="", index=True)
    state: Mapped[int] = mapped_column(Integer)
    escalation_state: Mapped[int] = mapped_column(Integer)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    acknowledged_by: Mapped[str] = mapped_column(String(128), default="")
    ack_at: Mapped[datetime | None] = mapped_column(UTC_TS, nullable=True)
    source_service: Mapped[str] = mapped_column(String(40), default="")
    # Set once the EscalationWorkflow runs; the dispatcher starts it for the rest (Temporal was down).
    escalation_started: Mapped[bool] = mapped_column(Boolean, default=False)
    # The Notification proto as accepted (recipients, content, subject, ack...).
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTC_TS)


class DedupeRow(TenantScoped, Base):
    """A live dedupe key: the first notification sent with it, until `expires_at`."""

    __tablename__ = "notify_dedupe_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "dedupe_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(300))
    notification_id: Mapped[str] = mapped_column(String(26))
    expires_at: Mapped[datetime] = mapped_column(UTC_TS)


class InboxItemRow(TenantScoped, Base):
    __tablename__ = "notify_inbox_items"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "notification_id", "user_id"),
        # The inbox page and the unread badge: one user's items, newest first.
        Index("ix_notify_inbox_items_owner", "tenant_id", "user_id", "id"),
    )
    id: Mapped[str] = mapped_column(String(26))
    user_id: Mapped[str] = mapped_column(String(128))
    notification_id: Mapped[str] = mapped_column(String(26))
    category: Mapped[str] = mapped_column(String(40))
    priority: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    locale: Mapped[str] = mapped_column(String(10))
    subject_service: Mapped[str] = mapped_column(String(40), default="")
    subject_kind: Mapped[str] = mapped_column(String(40), default="")
    subject_id: Mapped[str] = mapped_column(String(128), default="")
    action_url: Mapped[str] = mapped_column(String(500), default="")
    due_time: Mapped[datetime | None] = mapped_column(UTC_TS, nullable=True)
    read_at: Mapped[datetime | None] = mapped_column(UTC_TS, nullable=True)
    # DIGEST-mode items are filed read-less: they never count as unread.
    counts_unread: Mapped[bool] = mapped_column(Boolean, default=True)
    ack_required: Mapped[bool] = mapped_column(Boolean, default=False)
    ack_deadline: Mapped[datetime | None] = mapped_column(UTC_TS, nullable=True)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    escalated_from: Mapped[str] = mapped_column(String(500), default="")
    state: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTC_TS)


class DeliveryRow(TenantScoped, Base):
    """One external delivery: a recipient on one channel, with its tracking status."""

    __tablename__ = "notify_deliveries"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        Index("ix_notify_deliveries_due", "status", "next_attempt_at"),
        # The rate limit counts one recipient's recent deliveries on one channel.
        Index("ix_notify_deliveries_recipient", "tenant_id", "user_id", "channel", "queued_at"),
    )
    id: Mapped[str] = mapped_column(String(26))
    notification_id: Mapped[str] = mapped_column(String(26), index=True)
    user_id: Mapped[str] = mapped_column(String(128), default="")
    channel: Mapped[int] = mapped_column(Integer)
    channel_config_id: Mapped[str] = mapped_column(String(26), default="")
    address: Mapped[str] = mapped_column(String(320), default="")
    status: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    locale: Mapped[str] = mapped_column(String(10), default="")
    hold_until: Mapped[datetime | None] = mapped_column(UTC_TS, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTC_TS, nullable=True)
    last_error_code: Mapped[str] = mapped_column(String(80), default="")
    last_error: Mapped[str] = mapped_column(String(1000), default="")
    provider_message_id: Mapped[str] = mapped_column(String(200), default="")
    resent_from: Mapped[str] = mapped_column(String(26), default="")
    # Rate limiting: a summary delivery stands for the ones folded into it (SUPPRESSED, folded_into = its id).
    is_summary: Mapped[bool] = mapped_column(Boolean, default=False)
    folded_into: Mapped[str] = mapped_column(String(26), default="")
    suppression_reason: Mapped[int] = mapped_column(Integer, default=0)
    # Set once a DeliveryWorkflow owns the row; the dispatcher starts workflows for unowned due rows.
    dispatched: Mapped[bool] = mapped_column(Boolean, default=False)
    # The idempotency key of an attempt recorded but not yet known sent or failed ("" = none):
    # set before the provider is called, so a crash in between leaves the attempt visibly in doubt.
    inflight_key: Mapped[str] = mapped_column(String(80), default="")
    queued_at: Mapped[datetime] = mapped_column(UTC_TS)
    sent_at: Mapped[datetime | None] = mapped_column(UTC_TS, nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UTC_TS, nullable=True)


class TemplateRow(TenantScoped, Base):
    __tablename__ = "notify_templates"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "id"),
        UniqueConstraint("tenant_id", "template_key", "locale"),
    )
    id: Mapped[str] = mapped_column(String(26))
    template_key: Mapped[str] = mapped_column(String(120))
    locale: Mapped[str] = mapped_column(String(10))
    category: Mapped[str] = mapped_column(String(40))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # the Template proto
    updated_at: Mapped[datetime] = mapped_column(UTC_TS)


class PreferenceRow(Document, TenantScoped, Base):
    """A user's Preference proto."""

    __tablename__ = "notify_preferences"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(128))


class ChannelConfigRow(Document, TenantScoped, Base):
    """A ChannelConfig proto (secrets sealed with kit.secrets)."""

    __tablename__ = "notify_channel_configs"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),)
    id: Mapped[str] = mapped_column(String(26))
    channel: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class EscalationPolicyRow(Document, TenantScoped, Base):
    """An EscalationPolicy proto."""

    __tablename__ = "notify_escalation_policies"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "id"),)
    id: Mapped[str] = mapped_column(String(26))


class DeviceRow(TenantScoped, Base):
    """A user's app installation registered for mobile push (upsert on device id)."""

    __tablename__ = "notify_devices"
    __table_args__ = (UniqueConstraint("tenant_id", "device_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(128), index=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # the Device proto, push token included
    registered_at: Mapped[datetime] = mapped_column(UTC_TS)
