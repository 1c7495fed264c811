"""Contributions and the points ledger: every query over `contributions` and `point_entries`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_, select

from kit.auth import Principal
from kit.resources import Page, PageRequest, Repository, Sort
from salesops.knowledge.v1.contribution_pb2 import PointReason
from services.knowledge import access
from services.knowledge.domain.contributions import ACCEPTED
from services.knowledge.store_contributions import ContributionRow, PointEntryRow

USED = PointReason.POINT_REASON_CONTRIBUTED_CARD_USED
PRAISED = PointReason.POINT_REASON_CONTRIBUTED_CARD_PRAISED


def within(column: Any, org: str) -> ColumnElement[bool]:
    """`column` (an org path column) is `org` or below it, segment by segment."""
    root = org.strip("/")
    return or_(column == root, column.startswith(root + "/", autoescape=True))


class Contributions(Repository[ContributionRow]):
    model, resource, key = ContributionRow, "knowledge.Contribution", ("contribution_id",)

    @staticmethod
    def visible_to(who: Principal) -> list[ColumnElement[bool]]:
        """contributions.can_read in SQL: admins all; managers their subtree and own; others own."""
        if who.acts_tenant_wide:
            return []
        own = ContributionRow.contributor_user_id == who.user_id
        if access.is_manager(who) and who.org:
            return [or_(own, within(ContributionRow.contributor_org, who.org))]
        return [own]

    async def page(
        self, where: Sequence[ColumnElement[bool]], page: PageRequest, query: str
    ) -> Page[ContributionRow]:
        """Oldest submission first (the review queue's order), the id breaking ties."""
        order = [Sort(ContributionRow.submitted_at), Sort(ContributionRow.contribution_id)]
        return await self.list(where, order, page, query, count=True)

    async def of_card(self, card_id: str) -> ContributionRow | None:
        return await self.session.scalar(  # type: ignore[no-any-return]
            select(ContributionRow).where(ContributionRow.published_card_id == card_id)
        )

    async def counts_by_contributor(
        self, start: datetime | None, end: datetime | None, users: Sequence[str]
    ) -> dict[str, tuple[int, int]]:
        """Per contributor: (submitted, accepted) in [start, end) (None = unbounded)."""
        if not users:
            return {}
        submitted_in: list[ColumnElement[bool]] = [ContributionRow.contributor_user_id.in_(list(users))]
        accepted_in: list[ColumnElement[bool]] = [*submitted_in, ContributionRow.status == ACCEPTED]
        if start is not None:
            submitted_in.append(ContributionRow.submitted_at >= start)
            accepted_in.append(ContributionRow.reviewed_at >= start)
        if end is not None:
            submitted_in.append(ContributionRow.submitted_at < end)
            accepted_in.append(ContributionRow.reviewed_at < end)
        out: dict[str, tuple[int, int]] = {}
        user = ContributionRow.contributor_user_id
        for u, n in await self.session.execute(
            select(user, func.count()).where(*submitted_in).group_by(user)
        ):
            out[u] = (int(n), 0)
        for u, n in await self.session.execute(select(user, func.count()).where(*accepted_in).group_by(user)):
            out[u] = (out.get(u, (0, 0))[0], int(n))
        return out

    async def latest_org(self, user_id: str) -> str:
        org = await self.session.scalar(
            select(ContributionRow.contributor_org)
            .where(ContributionRow.contributor_user_id == user_id)
            .order_by(ContributionRow.submitted_at.desc())
            .limit(1)
        )
        return org or ""


@dataclass(frozen=True)
class Standing:
    user_id: str
    org: str
    points: int
    uses_by_others: int


class PointEntries(Repository[PointEntryRow]):
    model, resource, key = PointEntryRow, "knowledge.PointEntry", ("entry_id",)

    async def by_source(self, source_key: str) -> PointEntryRow | None:
        return await self.session.scalar(  # type: ignore[no-any-return]
            select(PointEntryRow).where(PointEntryRow.source_key == source_key)
        )

    async def ledger(
        self, user_id: str, where: Sequence[ColumnElement[bool]], page: PageRequest, query: str
    ) -> Page[PointEntryRow]:
        """A user's entries, newest first."""
        order = [
            Sort(PointEntryRow.created_at, descending=True),
            Sort(PointEntryRow.entry_id, descending=True),
        ]
        return await self.list([PointEntryRow.user_id == user_id, *where], order, page, query)

    async def total(self, user_id: str, where: Sequence[ColumnElement[bool]] = ()) -> int:
        found = await self.session.scalar(
            select(func.coalesce(func.sum(PointEntryRow.points), 0)).where(
                PointEntryRow.user_id == user_id, *where
            )
        )
        return int(found or 0)

    async def by_contribution(self, contribution_ids: Sequence[str]) -> dict[str, int]:
        if not contribution_ids:
            return {}
        rows = await self.session.execute(
            select(PointEntryRow.contribution_id, func.sum(PointEntryRow.points))
            .where(PointEntryRow.contribution_id.in_(list(set(contribution_ids))))
            .group_by(PointEntryRow.contribution_id)
        )
        return {c: int(n) for c, n in rows}

    async def use_points(self, card_id: str, start: datetime, end: datetime) -> int:
        """Use-based points (uses and praise) booked for a card in [start, end): the monthly cap's count."""
        found = await self.session.scalar(
            select(func.coalesce(func.sum(PointEntryRow.points), 0)).where(
                PointEntryRow.card_id == card_id,
                PointEntryRow.reason.in_([USED, PRAISED]),
                PointEntryRow.created_at >= start,
                PointEntryRow.created_at < end,
            )
        )
        return int(found or 0)

    async def standings(self, start: datetime | None, end: datetime | None, org: str) -> list[Standing]:
        """Points per user in [start, end) (None = unbounded), in the org subtree, best first (SQL sum)."""
        where: list[ColumnElement[bool]] = []
        if start is not None:
            where.append(PointEntryRow.created_at >= start)
        if end is not None:
            where.append(PointEntryRow.created_at < end)
        if org.strip("/"):
            where.append(within(PointEntryRow.user_org, org))
        total = func.sum(PointEntryRow.points)
        uses = func.sum(case((PointEntryRow.reason == USED, 1), else_=0))
        rows = await self.session.execute(
            select(PointEntryRow.user_id, func.max(PointEntryRow.user_org), total, uses)
            .where(*where)
            .group_by(PointEntryRow.user_id)
            .order_by(total.desc(), PointEntryRow.user_id)
        )
        return [Standing(u, o or "", int(p or 0), int(n or 0)) for u, o, p, n in rows]
