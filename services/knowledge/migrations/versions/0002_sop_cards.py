"""sop cards: cards, facets, versions, status changes, settings, search index

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)

# FTS5 over the application's tokens: unicode61 splits on the spaces between them and
# folds case; diacritics are kept, as PostgreSQL's tsvector keeps them, so both match alike.
SQLITE_FTS = [
    "CREATE VIRTUAL TABLE sop_card_fts USING fts5(tokens, content='sop_card_search', "
    "content_rowid='doc_id', columnsize=0, tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER sop_card_search_ai AFTER INSERT ON sop_card_search BEGIN "
    "INSERT INTO sop_card_fts(rowid, tokens) VALUES (new.doc_id, new.tokens); END",
    "CREATE TRIGGER sop_card_search_ad AFTER DELETE ON sop_card_search BEGIN "
    "INSERT INTO sop_card_fts(sop_card_fts, rowid, tokens) VALUES ('delete', old.doc_id, old.tokens); END",
    "CREATE TRIGGER sop_card_search_au AFTER UPDATE ON sop_card_search BEGIN "
    "INSERT INTO sop_card_fts(sop_card_fts, rowid, tokens) VALUES ('delete', old.doc_id, old.tokens); "
    "INSERT INTO sop_card_fts(rowid, tokens) VALUES (new.doc_id, new.tokens); END",
]


def upgrade() -> None:
    op.create_table(
        "tenant_settings",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("document", sa.String(128), nullable=False, comment="which settings: a message type name"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False, comment="serialized proto message"),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "document", name=op.f("pk_tenant_settings")),
    )
    op.create_table(
        "tenant_settings_history",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("document", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "document", "version", name=op.f("pk_tenant_settings_history")),
    )
    op.create_table(
        "sop_cards",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("card_id", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("scenario", sa.String(64), nullable=False),
        sa.Column("language_code", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("visibility", sa.Integer(), nullable=False),
        sa.Column("applies_to_leads", sa.Boolean(), nullable=False),
        sa.Column("author_user_id", sa.String(128), nullable=False),
        sa.Column("owner_user_id", sa.String(128), nullable=False),
        sa.Column("published_version", sa.Integer(), nullable=False),
        sa.Column("published_at", TS, nullable=True),
        sa.Column("status_reason", sa.String(1000), nullable=False),
        sa.Column("status_changed_at", TS, nullable=False),
        sa.Column("status_changed_by", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "card_id", name=op.f("pk_sop_cards")),
    )
    op.create_index("ix_sop_cards_tenant_status_updated", "sop_cards", ["tenant_id", "status", "updated_at"])
    op.create_index("ix_sop_cards_tenant_author", "sop_cards", ["tenant_id", "author_user_id"])
    op.create_table(
        "sop_card_facets",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("card_id", sa.String(64), nullable=False),
        sa.Column("facet", sa.String(16), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "card_id", "facet", "value", name=op.f("pk_sop_card_facets")),
    )
    op.create_index(
        "ix_sop_card_facets_tenant_facet_value", "sop_card_facets", ["tenant_id", "facet", "value"]
    )
    op.create_table(
        "sop_card_versions",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("card_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("published_at", TS, nullable=False),
        sa.Column("published_by", sa.String(128), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "card_id", "version", name=op.f("pk_sop_card_versions")),
    )
    op.create_table(
        "sop_card_status_changes",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("card_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.Integer(), nullable=False),
        sa.Column("to_status", sa.Integer(), nullable=False),
        sa.Column("actor_user_id", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("card_version", sa.Integer(), nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "card_id", "seq", name=op.f("pk_sop_card_status_changes")),
    )
    op.create_table(
        "sop_card_search",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column(
            "doc_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("card_id", sa.String(64), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.Column("title_tokens", sa.Text(), nullable=False),
        sa.Column("label_tokens", sa.Text(), nullable=False),
        sa.Column("lexemes", postgresql.TSVECTOR().with_variant(sa.Text(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("doc_id", name=op.f("pk_sop_card_search")),
        sa.UniqueConstraint("tenant_id", "card_id", name=op.f("uq_sop_card_search_tenant_id_card_id")),
    )
    for table in (
        "sop_cards",
        "sop_card_facets",
        "sop_card_versions",
        "sop_card_status_changes",
        "sop_card_search",
    ):
        op.create_index(f"ix_{table}_tenant_id", table, ["tenant_id"])
    op.create_index("ix_sop_card_search_lexemes", "sop_card_search", ["lexemes"], postgresql_using="gin")
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)
        return
    # The names FTS5 uses on SQLite, declared in the store; unused here.
    op.create_table("sop_card_fts", sa.Column("tokens", sa.Text(), nullable=True))
    op.create_table(
        "sop_card_fts_data",
        sa.Column("id", sa.Integer(), nullable=True),
        sa.Column("block", sa.LargeBinary(), nullable=True),
    )
    op.create_table(
        "sop_card_fts_idx",
        sa.Column("segid", sa.Text(), nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        sa.Column("pgno", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("segid", "term", name=op.f("pk_sop_card_fts_idx")),
    )
    op.create_table(
        "sop_card_fts_config",
        sa.Column("k", sa.Text(), nullable=False),
        sa.Column("v", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("k", name=op.f("pk_sop_card_fts_config")),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("sop_card_search_ai", "sop_card_search_ad", "sop_card_search_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS sop_card_fts")
    else:
        for table in ("sop_card_fts_config", "sop_card_fts_idx", "sop_card_fts_data", "sop_card_fts"):
            op.drop_table(table)
    for table in (
        "sop_card_search",
        "sop_card_status_changes",
        "sop_card_versions",
        "sop_card_facets",
        "sop_cards",
        "tenant_settings_history",
        "tenant_settings",
    ):
        op.drop_table(table)
