"""Tables of the integration service (its own database; no other service reads them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
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

from kit.db import NAMING_CONVENTION, Database, TenantScoped
from kit.events import outbox_table, processed_events_table
from kit.resources import Transactions

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Events leave through the outbox in the same transaction as the change they announce.
outbox = outbox_table(metadata)
# Ids of events this service has applied, so redelivered events apply once.
processed_events = processed_events_table(metadata)

TS = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = metadata


class ConnectorRow(TenantScoped, Base):
    __tablename__ = "connectors"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "connector_id"),
        Index("ix_connectors_tenant_kind", "tenant_id", "kind"),
    )

    connector_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(String(64))
    state: Mapped[int] = mapped_column(Integer)
    # Secrets sealed with kit.secrets (a JSON object name -> sealed value); never presented.
    sealed_secrets: Mapped[str] = mapped_column(Text, default="{}")
    sealed_signing_secret: Mapped[str] = mapped_column(Text, default="")
    signing_secret_hint: Mapped[str] = mapped_column(String(8), default="")
    secrets_updated_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    # Health: the last success and the last error of any call (test, webhook, sync).
    health: Mapped[int] = mapped_column(Integer)
    last_success_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    last_test: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(TS)
    updated_by: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer, default=1)
    # SHA-256 of the create request (secrets included, hashed): an identical replay is the same connector.
    request_digest: Mapped[str] = mapped_column(String(64))
    # The Connector proto, secrets and output-only fields cleared.
    body: Mapped[bytes] = mapped_column(LargeBinary)


class ConnectorChangeRow(TenantScoped, Base):
    """The audit trail of connector changes: who, when, what (field names, never secret values)."""

    __tablename__ = "connector_changes"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "change_id"),
        Index("ix_connector_changes_connector", "tenant_id", "connector_id", "changed_at"),
    )

    change_id: Mapped[str] = mapped_column(String(26))
    connector_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    fields: Mapped[str] = mapped_column(String(1000), default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    changed_by: Mapped[str] = mapped_column(String(128))
    changed_at: Mapped[datetime] = mapped_column(TS)


class ReceivedWebhookRow(TenantScoped, Base):
    __tablename__ = "received_webhooks"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "received_webhook_id"),
        # The idempotency key: one record per sender event id, for as long as the row is kept
        # (30 days, beyond the 3-day retry horizon of Standard Webhooks senders).
        UniqueConstraint("tenant_id", "connector_id", "external_event_id"),
        Index("ix_received_webhooks_received", "tenant_id", "received_at"),
    )

    received_webhook_id: Mapped[str] = mapped_column(String(26))
    connector_id: Mapped[str] = mapped_column(String(64))
    external_event_id: Mapped[str] = mapped_column(String(256))
    external_event_type: Mapped[str] = mapped_column(String(128), default="")
    signature_time: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    received_at: Mapped[datetime] = mapped_column(TS)
    verification: Mapped[int] = mapped_column(Integer)
    state: Mapped[int] = mapped_column(Integer)
    duplicate_count: Mapped[int] = mapped_column(Integer, default=0)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    processed_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    # Emitted events, "<event id> <type>" per line.
    emitted: Mapped[str] = mapped_column(Text, default="")
    deal_id: Mapped[str] = mapped_column(String(64), default="")
    content_type: Mapped[str] = mapped_column(String(128), default="")
    body_size: Mapped[int] = mapped_column(Integer)
    body_sha256: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    remote_address: Mapped[str] = mapped_column(String(64), default="")
    replay_count: Mapped[int] = mapped_column(Integer, default=0)
    last_replay_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)


class ExternalLinkRow(TenantScoped, Base):
    """One of our deals or customers <-> one external record; mapped events carry our id through it."""

    __tablename__ = "external_links"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "link_id"),
        # One link per external record.
        UniqueConstraint("tenant_id", "connector_id", "object_type", "external_id"),
        Index("ix_external_links_deal", "tenant_id", "deal_id"),
    )

    link_id: Mapped[str] = mapped_column(String(64))
    connector_id: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[int] = mapped_column(Integer)
    external_id: Mapped[str] = mapped_column(String(256))
    external_number: Mapped[str] = mapped_column(String(256), default="")
    deal_id: Mapped[str] = mapped_column(String(64), default="")
    customer_id: Mapped[str] = mapped_column(String(64), default="")
    origin: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(128))
    request_digest: Mapped[str] = mapped_column(String(64))


def transactions(db: Database) -> Transactions:
    """The service's units of work: its database, its outbox, one commit per piece of work."""
    return Transactions(db, source="integration", outbox=outbox)


# Each area's tables live in their own module on the same metadata; importing them
# here is what makes `store.metadata` complete for the runtime and the migrations.
from services.integration import (  # noqa: E402
    store_insights,
    store_outbound,
    store_partner_keys,
    store_settings,
    store_sync,
)

__all__ = ["store_insights", "store_outbound", "store_partner_keys", "store_settings", "store_sync"]
