"""Outbound webhooks: subscriptions (with their audit trail), deliveries and their attempts.

Secrets (a `v1` whsec_ secret or a `v1a` ed25519 private key, current and previous)
are sealed with kit.secrets into their own columns, never into the body.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, LargeBinary, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import TenantScoped
from services.integration.store import TS, Base


class WebhookSubscriptionRow(TenantScoped, Base):
    __tablename__ = "webhook_subscriptions"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "subscription_id"),
        Index("ix_webhook_subscriptions_state", "tenant_id", "state"),
    )

    subscription_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200))
    endpoint_url: Mapped[str] = mapped_column(String(2048))
    # Subscribed envelope types, space-separated ("pipeline.DealWon leads.*").
    event_types: Mapped[str] = mapped_column(Text)
    state: Mapped[int] = mapped_column(Integer)
    state_reason: Mapped[str] = mapped_column(String(500), default="")
    signing_scheme: Mapped[int] = mapped_column(Integer)
    sealed_secret: Mapped[str] = mapped_column(Text)
    sealed_previous_secret: Mapped[str] = mapped_column(Text, default="")
    previous_expires_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    public_key: Mapped[str] = mapped_column(String(64), default="")
    previous_public_key: Mapped[str] = mapped_column(String(64), default="")
    secret_hint: Mapped[str] = mapped_column(String(8), default="")
    owner_user_id: Mapped[str] = mapped_column(String(128))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_success_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    last_failure_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    failing_since: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(TS)
    updated_by: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer, default=1)
    # SHA-256 of the create request (secret hashed in): an identical replay is the same subscription.
    request_digest: Mapped[str] = mapped_column(String(64))
    # The WebhookSubscription proto (headers, retry policy, timeout), secret and server fields cleared.
    body: Mapped[bytes] = mapped_column(LargeBinary)


class WebhookSubscriptionChangeRow(TenantScoped, Base):
    """Audit: who changed which fields of a subscription, when (never a secret's value)."""

    __tablename__ = "webhook_subscription_changes"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "change_id"),
        Index("ix_webhook_subscription_changes_sub", "tenant_id", "subscription_id", "changed_at"),
    )

    change_id: Mapped[str] = mapped_column(String(26))
    subscription_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    fields: Mapped[str] = mapped_column(String(1000), default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    changed_by: Mapped[str] = mapped_column(String(128))
    changed_at: Mapped[datetime] = mapped_column(TS)


class WebhookDeliveryRow(TenantScoped, Base):
    """One event to one subscription. A Temporal workflow (webhook-delivery-<tenant>-<id>) owns it."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "delivery_id"),
        Index("ix_webhook_deliveries_sub_state", "tenant_id", "subscription_id", "state", "created_at"),
        Index("ix_webhook_deliveries_created", "tenant_id", "created_at"),
        # The sweep: rows no workflow has claimed yet (Temporal was away when they were made).
        Index("ix_webhook_deliveries_unclaimed", "claimed", "created_at"),
    )

    delivery_id: Mapped[str] = mapped_column(String(26))
    subscription_id: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(128))
    event_time: Mapped[datetime] = mapped_column(TS)
    state: Mapped[int] = mapped_column(Integer)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    dead_letter_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    replay_of: Mapped[str] = mapped_column(String(26), default="")
    created_at: Mapped[datetime] = mapped_column(TS)
    claimed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_http_status: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    # The JSON body sent (the EventEnvelope as proto3 JSON), fixed at fan-out: every retry signs the same bytes.
    body: Mapped[bytes] = mapped_column(LargeBinary)


class WebhookAttemptRow(TenantScoped, Base):
    __tablename__ = "webhook_attempts"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "delivery_id", "attempt_number"),)

    delivery_id: Mapped[str] = mapped_column(String(26))
    attempt_number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(TS)
    duration_ms: Mapped[int] = mapped_column(Integer)
    http_status: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(String(500), default="")
    # First 1 KiB of the answer, for debugging (never a request header or secret).
    response_excerpt: Mapped[str] = mapped_column(Text, default="")
    retry_after_seconds: Mapped[int] = mapped_column(Integer, default=0)
