"""The search index: each card's segmented words, and the candidate query of either database.

SQLite asks FTS5 (`sop_card_fts MATCH '"w1" OR "w2"'`), PostgreSQL the GIN-indexed
tsvector (`lexemes @@ 'w1' | 'w2'`). Both are given the same words and return
every card holding at least one of them; the ranking is the application's
(domain/search.py), so both databases answer the same ids in the same order.
Words are letters and digits only (segmentation.py), so quoting them is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, cast, delete, func, literal, select, text
from sqlalchemy.dialects.postgresql import TSQUERY

from kit.resources import UnitOfWork
from services.knowledge.domain.search import Doc
from services.knowledge.store import SopCardRow, SopCardSearchRow

# A query touching more cards than this is cut (the first by index order are ranked):
# keeps one search bounded in memory and time; far beyond what a rep pages through.
MAX_CANDIDATES = 5000


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

    def _match(self, words: Sequence[str]) -> ColumnElement[bool]:
        if self.dialect == "postgresql":
            query = " | ".join("'" + w.replace("\\", "\\\\").replace("'", "''") + "'" for w in words)
            return SopCardSearchRow.lexemes.op("@@")(cast(literal(query), TSQUERY))  # type: ignore[no-any-return]
        query = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
        fts = text("SELECT rowid FROM sop_card_fts WHERE sop_card_fts MATCH :fts_query").bindparams(
            fts_query=query
        )
        return SopCardSearchRow.doc_id.in_(fts)

    async def candidates(self, words: Sequence[str], where: Sequence[ColumnElement[bool]]) -> list[Doc]:
        """Cards holding any of `words` and meeting `where` (conditions on SopCardRow)."""
        if not words:
            return []
        stmt = (
            select(
                SopCardSearchRow.card_id,
                SopCardSearchRow.tokens,
                SopCardSearchRow.title_tokens,
                SopCardSearchRow.label_tokens,
            )
            .join(SopCardRow, SopCardRow.card_id == SopCardSearchRow.card_id)
            .where(self._match(words), *where)
            .order_by(SopCardSearchRow.card_id)
            .limit(MAX_CANDIDATES)
        )
        rows = await self.session.execute(stmt)
        return [Doc(c, t, tt, lt) for c, t, tt, lt in rows]  # counted unsplit (domain/search.py)
