"""Partner keys: the keys, their secrets (hashes only) and the audit trail of changes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, PrimaryKeyConstraint, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import TenantScoped
from services.integration.store import TS, Base


class PartnerKeyRow(TenantScoped, Base):
    __tablename__ = "partner_keys"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "key_id"),
        Index("ix_partner_keys_tenant_name", "tenant_id", "display_name"),
    )

    key_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200))
    partner_name: Mapped[str] = mapped_column(String(200), default="")
    scopes: Mapped[str] = mapped_column(Text)  # space-separated
    org_path: Mapped[str] = mapped_column(String(256), default="")
    allowed_cidrs: Mapped[str] = mapped_column(Text, default="")  # space-separated
    rate_limit_per_minute: Mapped[int] = mapped_column(Integer)
    expire_at: Mapped[datetime] = mapped_column(TS)
    # Public start of the current secret ("so_live_Ab3x"); the secret itself is never stored.
    key_prefix: Mapped[str] = mapped_column(String(16))
    previous_secret_expire_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    revoked_by: Mapped[str] = mapped_column(String(128), default="")
    revoke_reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(TS)
    updated_by: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer, default=1)
    # SHA-256 of the create request: an identical retry is the same key (returned without a secret).
    request_digest: Mapped[str] = mapped_column(String(64))


class PartnerKeySecretRow(TenantScoped, Base):
    """One secret of a key, by its SHA-256: the current one and, during a rotation's grace, the previous.

    The hash is unique across tenants: the exchange finds the key (and so the tenant) by it alone.
    """

    __tablename__ = "partner_key_secrets"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "secret_hash"),
        UniqueConstraint("secret_hash"),
        Index("ix_partner_key_secrets_key", "tenant_id", "key_id"),
    )

    secret_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))
    # None: the current secret (the key's expiry governs); set: a previous one, usable until then.
    valid_until: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    created_at: Mapped[datetime] = mapped_column(TS)


class PartnerKeyChangeRow(TenantScoped, Base):
    """The audit trail of partner keys: who did what, when, which fields (never a secret)."""

    __tablename__ = "partner_key_changes"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "change_id"),
        Index("ix_partner_key_changes_key", "tenant_id", "key_id", "changed_at"),
    )

    change_id: Mapped[str] = mapped_column(String(26))
    key_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    fields: Mapped[str] = mapped_column(String(1000), default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    changed_by: Mapped[str] = mapped_column(String(128))
    changed_at: Mapped[datetime] = mapped_column(TS)
