"""Keyword trackers, conversations, their hits and the weekly digests: tables on the service's metadata."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import TenantScoped
from services.integration.store import Base

TS = DateTime(timezone=True)


class InsightKeywordRow(TenantScoped, Base):
    """One tracker of the tenant's dictionary: a term and its variants."""

    __tablename__ = "insight_keywords"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "keyword_id"),
        # Terms are unique per tenant, compared folded (case, width, spacing).
        UniqueConstraint("tenant_id", "term_key"),
    )

    keyword_id: Mapped[str] = mapped_column(String(64))
    term: Mapped[str] = mapped_column(String(100))
    term_key: Mapped[str] = mapped_column(String(100))
    category: Mapped[int] = mapped_column(Integer)
    # JSON array of the synonyms, as given.
    synonyms: Mapped[str] = mapped_column(Text, default="[]")
    customer_only: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(TS)
    updated_by: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer, default=1)
    # SHA-256 of the create request: an identical replay is the same keyword.
    request_digest: Mapped[str] = mapped_column(String(64))


class ConversationRow(TenantScoped, Base):
    """A submitted transcript (kept until its retention deadline) and what was found in it."""

    __tablename__ = "conversations"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "conversation_id"),
        # Archive imports: one conversation per connector record (NULLs, i.e. manual submits, never collide).
        UniqueConstraint("tenant_id", "source_connector_id", "external_id"),
        Index("ix_conversations_lead", "tenant_id", "lead_id", "start_time"),
        Index("ix_conversations_deal", "tenant_id", "deal_id", "start_time"),
        Index("ix_conversations_start", "tenant_id", "start_time"),
    )

    conversation_id: Mapped[str] = mapped_column(String(64))
    lead_id: Mapped[str] = mapped_column(String(64), default="")
    deal_id: Mapped[str] = mapped_column(String(64), default="")
    customer_id: Mapped[str] = mapped_column(String(64), default="")
    channel: Mapped[int] = mapped_column(Integer)
    start_time: Mapped[datetime] = mapped_column(TS)
    source_connector_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    external_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    submitted_by: Mapped[str] = mapped_column(String(128))
    # The submitter's org unit when submitted: the team whose digest counts it and whose managers read it.
    org_path: Mapped[str] = mapped_column(String(256), default="")
    analysis_state: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(TS)
    request_digest: Mapped[str] = mapped_column(String(64))
    # The Conversation proto without transcript and output-only fields.
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # The transcript (a serialized Conversation holding only stored_segments); NULL once deleted.
    transcript: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    transcript_expire_at: Mapped[datetime] = mapped_column(TS)
    # KeywordMention list and KeywordOccurrence list (a serialized Conversation holding only those).
    findings: Mapped[bytes] = mapped_column(LargeBinary, default=b"")


class ConversationHitRow(TenantScoped, Base):
    """One keyword found in one conversation: the figures keyword filters and digests read."""

    __tablename__ = "conversation_hits"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "conversation_id", "keyword_id"),
        Index("ix_conversation_hits_keyword", "tenant_id", "keyword_id", "start_time"),
        Index("ix_conversation_hits_week", "tenant_id", "start_time"),
    )

    conversation_id: Mapped[str] = mapped_column(String(64))
    keyword_id: Mapped[str] = mapped_column(String(64))
    # The term and category when found (a later rename or delete does not rewrite history).
    term: Mapped[str] = mapped_column(String(100))
    category: Mapped[int] = mapped_column(Integer)
    mentions: Mapped[int] = mapped_column(Integer)
    customer_mentions: Mapped[int] = mapped_column(Integer)
    lead_id: Mapped[str] = mapped_column(String(64), default="")
    deal_id: Mapped[str] = mapped_column(String(64), default="")
    org_path: Mapped[str] = mapped_column(String(256), default="")
    start_time: Mapped[datetime] = mapped_column(TS)


class KeywordDigestRow(TenantScoped, Base):
    """A weekly "top keywords customers raised" digest of the tenant or of one team."""

    __tablename__ = "keyword_digests"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "digest_id"),
        # One digest per week and org subtree: a re-run of the week's schedule makes none twice.
        UniqueConstraint("tenant_id", "week_start", "org_path"),
    )

    digest_id: Mapped[str] = mapped_column(String(26))
    week_start: Mapped[str] = mapped_column(String(10))  # ISO date of the Monday
    org_path: Mapped[str] = mapped_column(String(256), default="")
    generated_at: Mapped[datetime] = mapped_column(TS)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the KeywordDigest proto


class InsightSubjectRow(TenantScoped, Base):
    """Who owns a lead or deal, as leads' and pipeline's events say: reps submit for their own."""

    __tablename__ = "insight_subjects"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "kind", "subject_id"),)

    kind: Mapped[str] = mapped_column(String(8))  # "lead" or "deal"
    subject_id: Mapped[str] = mapped_column(String(64))
    owner_user_id: Mapped[str] = mapped_column(String(128), default="")
    org_path: Mapped[str] = mapped_column(String(256), default="")
    updated_at: Mapped[datetime] = mapped_column(TS)
