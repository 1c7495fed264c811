"""Every query on keyword trackers, conversations, their hits and the weekly digests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, distinct, exists, func, insert, or_, select, update

from kit.db import Database
from kit.resources import Page, PageRequest, Repository, Sort, query_key
from services.integration.store_insights import (
    ConversationHitRow,
    ConversationRow,
    InsightKeywordRow,
    InsightSubjectRow,
    KeywordDigestRow,
)


class InsightKeywords(Repository[InsightKeywordRow]):
    model, resource, key = InsightKeywordRow, "integration.InsightKeyword", ("keyword_id",)

    async def by_term(self, term_key: str) -> InsightKeywordRow | None:
        return await self.session.scalar(
            select(InsightKeywordRow).where(InsightKeywordRow.term_key == term_key)
        )

    async def enabled(self) -> list[InsightKeywordRow]:
        """The trackers an analysis matches (the whole dictionary: a few hundred at most)."""
        found = await self.session.scalars(
            select(InsightKeywordRow).where(InsightKeywordRow.disabled.is_(False))
        )
        return list(found)

    async def page(self, category: int, include_disabled: bool, page: PageRequest) -> Page[InsightKeywordRow]:
        r = InsightKeywordRow
        where: list[ColumnElement[bool]] = []
        if category:
            where.append(r.category == category)
        if not include_disabled:
            where.append(r.disabled.is_(False))
        # Documented order: by term (its folded key), then id.
        order = [Sort(r.term_key), Sort(r.keyword_id)]
        return await self.list(where, order, page, query=query_key("keywords", category, include_disabled))


class Conversations(Repository[ConversationRow]):
    model, resource, key = ConversationRow, "integration.Conversation", ("conversation_id",)

    async def by_external(self, connector_id: str, external_id: str) -> ConversationRow | None:
        return await self.session.scalar(
            select(ConversationRow).where(
                ConversationRow.source_connector_id == connector_id,
                ConversationRow.external_id == external_id,
            )
        )

    async def add_hits(self, rows: Sequence[dict[str, object]]) -> None:
        if rows:
            await self.session.execute(insert(ConversationHitRow), list(rows))

    async def page(
        self,
        *,
        lead_id: str,
        deal_id: str,
        customer_id: str,
        keyword_id: str,
        since: datetime | None,
        until: datetime | None,
        submitted_by: str | None,
        org_paths: Sequence[str] | None,
        page: PageRequest,
    ) -> Page[ConversationRow]:
        """Newest first. `submitted_by` / `org_paths` (prefixes) narrow to what the viewer may read."""
        r = ConversationRow
        where: list[ColumnElement[bool]] = []
        for column, value in ((r.lead_id, lead_id), (r.deal_id, deal_id), (r.customer_id, customer_id)):
            if value:
                where.append(column == value)
        if since is not None:
            where.append(r.start_time >= since)
        if until is not None:
            where.append(r.start_time < until)
        if keyword_id:
            h = ConversationHitRow
            where.append(
                exists().where(
                    h.tenant_id == r.tenant_id,
                    h.conversation_id == r.conversation_id,
                    h.keyword_id == keyword_id,
                )
            )
        scope: list[ColumnElement[bool]] = []
        if submitted_by is not None:
            scope.append(r.submitted_by == submitted_by)
        for path in org_paths or ():
            scope += [r.org_path == path, r.org_path.startswith(path + "/", autoescape=True)]
        if submitted_by is not None or org_paths is not None:
            where.append(or_(*scope))
        order = [Sort(r.start_time, descending=True), Sort(r.conversation_id, descending=True)]
        key = query_key(
            "conversations", lead_id, deal_id, customer_id, keyword_id, since, until, submitted_by, org_paths
        )
        return await self.list(where, order, page, query=key)

    async def expire_transcripts(self, now: datetime) -> int:
        """Transcripts past their retention deadline are deleted; the keywords found stay."""
        result = await self.session.execute(
            update(ConversationRow)
            .where(ConversationRow.transcript_expire_at <= now, ConversationRow.transcript.is_not(None))
            .values(transcript=None)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class KeywordWeek:
    """The hits of one week, read for the digest (customer mentions only count)."""

    def __init__(self, repo: Repository[ConversationHitRow]) -> None:
        self.session = repo.session

    async def teams(self, start: datetime, end: datetime) -> list[str]:
        """Org units of the submitters with conversations in the window."""
        found = await self.session.scalars(
            select(ConversationRow.org_path)
            .distinct()
            .where(
                ConversationRow.start_time >= start,
                ConversationRow.start_time < end,
                ConversationRow.org_path != "",
            )
        )
        return sorted(found)

    def _in(self, column: Any, org_path: str) -> list[ColumnElement[bool]]:
        if not org_path:
            return []
        return [or_(column == org_path, column.startswith(org_path + "/", autoescape=True))]

    async def conversations(self, start: datetime, end: datetime, org_path: str) -> int:
        c = ConversationRow
        found = await self.session.scalar(
            select(func.count()).where(
                c.start_time >= start, c.start_time < end, *self._in(c.org_path, org_path)
            )
        )
        return int(found or 0)

    async def figures(
        self, start: datetime, end: datetime, org_path: str
    ) -> list[tuple[str, str, int, int, int, int, int]]:
        """Per keyword: (id, term, category, customer mentions, conversations, leads, deals), customers' only."""
        h = ConversationHitRow
        rows = await self.session.execute(
            select(
                h.keyword_id,
                func.max(h.term),
                func.max(h.category),
                func.sum(h.customer_mentions),
                func.count(),
                func.count(distinct(func.nullif(h.lead_id, ""))),
                func.count(distinct(func.nullif(h.deal_id, ""))),
            )
            .where(
                h.start_time >= start,
                h.start_time < end,
                h.customer_mentions > 0,
                *self._in(h.org_path, org_path),
            )
            .group_by(h.keyword_id)
        )
        return [(str(a), str(b), int(c), int(d or 0), int(e), int(f), int(g)) for a, b, c, d, e, f, g in rows]


class Hits(Repository[ConversationHitRow]):
    model, resource, key = (
        ConversationHitRow,
        "integration.ConversationHit",
        ("conversation_id", "keyword_id"),
    )

    def week(self) -> KeywordWeek:
        return KeywordWeek(self)


class KeywordDigests(Repository[KeywordDigestRow]):
    model, resource, key = KeywordDigestRow, "integration.KeywordDigest", ("digest_id",)

    async def of_week(self, week_start: str, org_path: str) -> KeywordDigestRow | None:
        return await self.session.scalar(
            select(KeywordDigestRow).where(
                KeywordDigestRow.week_start == week_start, KeywordDigestRow.org_path == org_path
            )
        )

    async def page(
        self, org_path: str, since_week: str, org_paths: Sequence[str] | None, page: PageRequest
    ) -> Page[KeywordDigestRow]:
        """Newest week first. `org_paths` (prefixes; None = all) narrow to the viewer's subtrees."""
        r = KeywordDigestRow
        where: list[ColumnElement[bool]] = [r.org_path == org_path]
        if since_week:
            where.append(r.week_start >= since_week)
        if org_paths is not None:
            where.append(
                or_(
                    *[
                        c
                        for p in org_paths
                        for c in (r.org_path == p, r.org_path.startswith(p + "/", autoescape=True))
                    ]
                )
            )
        order = [Sort(r.week_start, descending=True), Sort(r.digest_id, descending=True)]
        return await self.list(
            where, order, page, query=query_key("digests", org_path, since_week, org_paths)
        )


class Subjects(Repository[InsightSubjectRow]):
    model, resource, key = InsightSubjectRow, "integration.InsightSubject", ("kind", "subject_id")

    async def record(self, kind: str, subject_id: str, owner: str, org_path: str, at: datetime) -> None:
        """Upsert the owner (events of one subject arrive in order on its producer's stream)."""
        row = await self.find(kind, subject_id)
        if row is None:
            await self.add(
                InsightSubjectRow(
                    kind=kind, subject_id=subject_id, owner_user_id=owner, org_path=org_path, updated_at=at
                )
            )
            return
        row.owner_user_id, row.org_path, row.updated_at = owner, org_path, at
        await self.session.flush()


async def tenants_with_conversations(db: Database) -> list[str]:
    """Every tenant that has submitted conversations (a cross-tenant read: the schedules are per tenant)."""
    async with db.system_session() as s:
        found = await s.scalars(
            select(ConversationRow.tenant_id).distinct().order_by(ConversationRow.tenant_id)
        )
        return list(found)


__all__ = [
    "Conversations",
    "Hits",
    "InsightKeywords",
    "KeywordDigests",
    "KeywordWeek",
    "tenants_with_conversations",
]
