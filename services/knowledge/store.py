"""Tables of the knowledge service (its own database; no other service reads them).

Cards keep their filterable fields in columns and the SopCard proto in `body`;
multi-valued filters (industries, stages, tags, visible org paths) are rows of
`sop_card_facets`. Every publish freezes a row of `sop_card_versions`; every
lifecycle call appends a row of `sop_card_status_changes`.

Search: `sop_card_search` holds each card's text segmented in the application
(jieba), tokens space-joined. SQLite indexes it with the FTS5 table
`sop_card_fts` (unicode61, external content, kept in step by triggers made in
migration 0002); PostgreSQL with a GIN index over the same tokens as a tsvector.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.db import NAMING_CONVENTION, Database, TenantScoped
from kit.events import outbox_table, processed_events_table
from kit.resources import Transactions, settings_tables

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Events leave through the outbox in the same transaction as the change they announce.
outbox = outbox_table(metadata)
# Ids of events this service has applied, so redelivered events apply once.
processed_events = processed_events_table(metadata)
# KnowledgeSettings (feedback, iteration, points, recommendation, scenarios, synonyms).
settings = settings_tables(metadata)

TS = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = metadata


class SopCardRow(TenantScoped, Base):
    __tablename__ = "sop_cards"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "card_id"),
        Index("ix_sop_cards_tenant_status_updated", "tenant_id", "status", "updated_at"),
        Index("ix_sop_cards_tenant_author", "tenant_id", "author_user_id"),
    )

    card_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    scenario: Mapped[str] = mapped_column(String(64))
    language_code: Mapped[str] = mapped_column(String(16))
    status: Mapped[int] = mapped_column(Integer)  # CardStatus
    kind: Mapped[int] = mapped_column(Integer)  # CardKind
    visibility: Mapped[int] = mapped_column(Integer)  # CardVisibility
    applies_to_leads: Mapped[bool] = mapped_column(default=False)
    author_user_id: Mapped[str] = mapped_column(String(128))
    owner_user_id: Mapped[str] = mapped_column(String(128))
    published_version: Mapped[int] = mapped_column(Integer, default=0)
    published_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    status_reason: Mapped[str] = mapped_column(String(1000), default="")
    status_changed_at: Mapped[datetime] = mapped_column(TS)
    status_changed_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(TS)
    updated_by: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer, default=1)  # the etag
    # SHA-256 of the create request as sanitised: a replay with the same id and content is the same card.
    request_digest: Mapped[str] = mapped_column(String(64))
    # The SopCard proto (content, applicability, visibility); columns win over it.
    body: Mapped[bytes] = mapped_column(LargeBinary)


class SopCardLibraryRow(TenantScoped, Base):
    """The tenant's card library version: +1 in the transaction of every card insert, update or delete
    (repositories/cards.py), so in-process copies of the library (recommend's) see any change, from any
    replica, by reading one row. `changed_at` tells a database made anew under the same URL apart."""

    __tablename__ = "sop_card_library"
    __table_args__ = (PrimaryKeyConstraint("tenant_id"),)

    version: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[datetime] = mapped_column(TS)


class SopCardFacetRow(TenantScoped, Base):
    """One value of a multi-valued filter of a card: facet is industry, stage, tag or org."""

    __tablename__ = "sop_card_facets"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "card_id", "facet", "value"),
        Index("ix_sop_card_facets_tenant_facet_value", "tenant_id", "facet", "value"),
    )

    card_id: Mapped[str] = mapped_column(String(64))
    facet: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(200))


class SopCardVersionRow(TenantScoped, Base):
    """An immutable published version: written once by PublishSopCard, never updated."""

    __tablename__ = "sop_card_versions"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "card_id", "version"),)

    card_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    published_at: Mapped[datetime] = mapped_column(TS)
    published_by: Mapped[str] = mapped_column(String(128))
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the SopCardVersion proto


class SopCardStatusChangeRow(TenantScoped, Base):
    __tablename__ = "sop_card_status_changes"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "card_id", "seq"),)

    card_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per card
    from_status: Mapped[int] = mapped_column(Integer)
    to_status: Mapped[int] = mapped_column(Integer)
    actor_user_id: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(1000), default="")
    card_version: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[datetime] = mapped_column(TS)


class SopCardSearchRow(TenantScoped, Base):
    """A card's segmented text. `doc_id` is the FTS5 rowid on SQLite (a stable integer key)."""

    __tablename__ = "sop_card_search"
    __table_args__ = (
        UniqueConstraint("tenant_id", "card_id"),
        # PostgreSQL's search index; on SQLite `lexemes` stays empty (FTS5 serves) and this is a tiny B-tree.
        Index("ix_sop_card_search_lexemes", "lexemes", postgresql_using="gin"),
    )

    doc_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    card_id: Mapped[str] = mapped_column(String(64))
    # Every searchable field's tokens, space-joined: what both databases index.
    tokens: Mapped[str] = mapped_column(Text)
    # Title and scenario/tag tokens alone: they weigh more in the ranking.
    title_tokens: Mapped[str] = mapped_column(Text)
    label_tokens: Mapped[str] = mapped_column(Text)
    # PostgreSQL: the tokens as a tsvector, lexemes verbatim (array_to_tsvector: no server parser,
    # so the server's locale cannot split or drop a Chinese word; the 'simple' configuration's result).
    lexemes: Mapped[Any] = mapped_column(TSVECTOR().with_variant(Text(), "sqlite"))


# SQLite's FTS5 index over sop_card_search.tokens and the shadow tables FTS5 keeps
# beside it. Declared so the store and the migrations describe the same database
# (tests/contract compares them); migration 0002 makes them an FTS5 virtual table on
# SQLite and plain, always-empty tables on PostgreSQL, where the GIN index serves.
FTS_TABLE = "sop_card_fts"
sop_card_fts = Table(FTS_TABLE, metadata, Column("tokens", Text))
sop_card_fts_data = Table(
    f"{FTS_TABLE}_data",
    metadata,
    Column("id", Integer),  # INTEGER PRIMARY KEY on SQLite, which reflects it as nullable
    Column("block", LargeBinary),
)
sop_card_fts_idx = Table(
    f"{FTS_TABLE}_idx",
    metadata,
    Column("segid", Text, primary_key=True),
    Column("term", Text, primary_key=True),
    Column("pgno", Text),
)
sop_card_fts_config = Table(
    f"{FTS_TABLE}_config",
    metadata,
    Column("k", Text, primary_key=True),
    Column("v", Text),
)


def transactions(db: Database) -> Transactions:
    """The service's units of work: its database, its outbox, one commit per piece of work."""
    return Transactions(db, source="knowledge", outbox=outbox)


# Each area's tables live in their own module on the same metadata; importing them
# here is what makes `store.metadata` complete for the runtime and the migrations.
from services.knowledge import (  # noqa: E402
    store_contributions,
    store_iteration,
    store_outcomes,
    store_usage_days,
    store_uses,
)

__all__ = ["store_contributions", "store_iteration", "store_outcomes", "store_usage_days", "store_uses"]
