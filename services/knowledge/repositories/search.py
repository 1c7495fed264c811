"""The search index: each card's segmented words, and the candidate query of either database.

SQLite asks FTS5 (`sop_card_fts MATCH '"w1" OR "w2"'`), PostgreSQL the GIN-indexed
tsvector (`lexemes @@ 'w1' | 'w2'`). Both are given the same words and find every
card holding at least one of them; the database's own relevance (FTS5 bm25,
ts_rank) picks the best `pool` of them in SQL, and the ranking of those is the
application's (domain/search.py). While a query matches at most `pool` cards both
databases answer the same ids in the same order; beyond it, the pool (not the
order within it) follows each database's relevance. Words are letters and digits
only (segmentation.py), so quoting them is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Float, Integer, cast, delete, func, literal, select, text
from sqlalchemy.dialects.postgresql import TSQUERY

from kit.resources import UnitOfWork
from services.knowledge.domain.search import Doc
from services.knowledge.store import SopCardRow, SopCardSearchRow


class SearchIndex:
    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session
        self.dialect = self.session.get_bind().dialect.name

    def _lexemes(self, tokens: str) -> object:
        if self.dialect == "postgresql":
            return func.array_to_tsvector(func.string_to_array(literal(tokens), " "))
        return ""  # SQLite: FTS5 indexes `tokens` (triggers of migration 0002)

    async def put(
        self, card_id: str, words: Sequence[str], title: Sequence[str], labels: Sequence[str]
    ) -> None:
        """Index (or re-index) a card's words."""
        tokens = " ".join(words)
        row = await self.session.scalar(select(SopCardSearchRow).where(SopCardSearchRow.card_id == card_id))
        if row is None:
            row = SopCardSearchRow(card_id=card_id)
            self.session.add(row)
        row.tokens = tokens
        row.title_tokens = " ".join(title)
        row.label_tokens = " ".join(labels)
        row.lexemes = self._lexemes(tokens)
        await self.session.flush()

    async def remove(self, card_id: str) -> None:
        await self.session.execute(
            delete(SopCardSearchRow)
            .where(SopCardSearchRow.card_id == card_id)
            .execution_options(synchronize_session=False)
        )

    def _pg_query(self, words: Sequence[str]) -> ColumnElement[Any]:
        query = " | ".join("'" + w.replace("\\", "\\\\").replace("'", "''") + "'" for w in words)
        return cast(literal(query), TSQUERY)

    @staticmethod
    def _fts_query(words: Sequence[str]) -> str:
        return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)

    def _fts(self, words: Sequence[str]) -> Any:
        """SQLite: the FTS5 matches of any word, with their bm25 (lower is more relevant)."""
        query = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        return (
            text(
                "SELECT rowid, bm25(sop_card_fts) AS relevance FROM sop_card_fts WHERE sop_card_fts MATCH :q"
            )
            .bindparams(q=query)
            .columns(rowid=Integer, relevance=Float)
            .cte("fts")
            # Computed once, then joined by rowid: as a subquery SQLite ran the MATCH per index row.
            .prefix_with("MATERIALIZED")
        )

    async def candidates(
        self, words: Sequence[str], where: Sequence[ColumnElement[bool]], pool: int
    ) -> tuple[list[Doc], int]:
        """The `pool` most relevant cards (by the database) holding any of `words` and meeting `where`
        (conditions on SopCardRow), ties by card id; and how many cards the index found in all
        (counted only when the pool is full)."""
        if not words:
            return [], 0
        columns = (
            SopCardSearchRow.card_id,
            SopCardSearchRow.tokens,
            SopCardSearchRow.title_tokens,
            SopCardSearchRow.label_tokens,
        )
        joined = select(*columns).join(SopCardRow, SopCardRow.card_id == SopCardSearchRow.card_id)
        if self.dialect == "postgresql":
            query = self._pg_query(words)
            stmt = joined.where(SopCardSearchRow.lexemes.op("@@")(query), *where)
            relevance: ColumnElement[Any] = func.ts_rank(SopCardSearchRow.lexemes, query).desc()
        else:
            fts = self._fts(words)
            stmt = joined.join(fts, fts.c.rowid == SopCardSearchRow.doc_id).where(*where)
            relevance = fts.c.relevance.asc()
        rows = (
            await self.session.execute(stmt.order_by(relevance, SopCardSearchRow.card_id).limit(pool))
        ).all()
        docs = [Doc(c, t, tt, lt) for c, t, tt, lt in rows]  # counted unsplit (domain/search.py)
        if len(docs) < pool:
            return docs, len(docs)
        return docs, await self._count(words, where)

    async def _count(self, words: Sequence[str], where: Sequence[ColumnElement[bool]]) -> int:
        """Every card holding any of `words` and meeting `where`, unranked (no bm25 to compute)."""
        if self.dialect == "postgresql":
            match = SopCardSearchRow.lexemes.op("@@")(self._pg_query(words))
        else:
            fts = text("SELECT rowid FROM sop_card_fts WHERE sop_card_fts MATCH :q").bindparams(
                q=self._fts_query(words)
            )
            match = SopCardSearchRow.doc_id.in_(fts)
        stmt = (
            select(func.count())
            .select_from(SopCardSearchRow)
            .join(SopCardRow, SopCardRow.card_id == SopCardSearchRow.card_id)
            .where(match, *where)
        )
        return int(await self.session.scalar(stmt) or 0)
