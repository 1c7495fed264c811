"""SOP cards, their facets (industries, stages, tags, org paths), versions and status history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, false, func, or_, select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kit.auth import Principal
from kit.errors import InvalidArgument
from kit.resources import Page, PageRequest, Repository, Sort, UnitOfWork, query_key
from salesops.knowledge.v1.knowledge_service_pb2 import SopCardFilter
from salesops.knowledge.v1.sop_card_pb2 import CardVisibility
from services.knowledge import access
from services.knowledge.domain.cards import DRAFT, IN_REVIEW, PUBLISHED, RETIRED, org_prefixes
from services.knowledge.repositories.usage_days import window_sums
from services.knowledge.store import (
    SopCardFacetRow,
    SopCardLibraryRow,
    SopCardRow,
    SopCardStatusChangeRow,
    SopCardVersionRow,
)

INDUSTRY, STAGE, TAG, ORG = "industry", "stage", "tag", "org"
ORDERS = {
    "": [Sort(SopCardRow.updated_at, descending=True)],
    "update_time desc": [Sort(SopCardRow.updated_at, descending=True)],
    "title": [Sort(SopCardRow.title)],
    "publish_time desc": [Sort(SopCardRow.published_at, descending=True)],
}
# Orders by the card's 30-day figures (repositories/usage_days.window_sums), then card id.
USAGE_ORDERS = {"uses_30d desc": "uses_30d", "negative_rate_30d desc": "negative_rate_30d"}


async def bump_library(uow: UnitOfWork) -> None:
    """+1 on the tenant's card library version (its row made at the first write)."""
    table: Any = SopCardLibraryRow.__table__
    dialect = uow.session.get_bind().dialect.name
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(table).values(
        tenant_id=uow.tenant, version=1, changed_at=datetime.now(UTC)
    )
    await uow.session.execute(
        stmt.on_conflict_do_update(
            index_elements=["tenant_id"],
            set_={"version": table.c.version + 1, "changed_at": stmt.excluded.changed_at},
        )
    )


def _facet(facet: str, values: Sequence[str]) -> ColumnElement[bool]:
    return exists().where(
        SopCardFacetRow.card_id == SopCardRow.card_id,
        SopCardFacetRow.facet == facet,
        SopCardFacetRow.value.in_(list(values)),
    )


def _no_facet(facet: str) -> ColumnElement[bool]:
    return ~exists().where(SopCardFacetRow.card_id == SopCardRow.card_id, SopCardFacetRow.facet == facet)


def _audience(who: Principal) -> ColumnElement[bool]:
    """SQL twin of domain.cards.audience_sees for a published (or, to managers, retired) card."""
    manager = access.is_manager(who)
    branches: list[ColumnElement[bool]] = [
        SopCardRow.visibility.in_(
            [CardVisibility.CARD_VISIBILITY_TENANT, CardVisibility.CARD_VISIBILITY_UNSPECIFIED]
        )
    ]
    if manager:
        branches.append(SopCardRow.visibility == CardVisibility.CARD_VISIBILITY_MANAGERS)
    prefixes = org_prefixes(who.org)
    if prefixes:
        orgs = [_facet(ORG, prefixes)]
        if manager:  # the managers above a listed unit see it too
            orgs.append(
                exists().where(
                    SopCardFacetRow.card_id == SopCardRow.card_id,
                    SopCardFacetRow.facet == ORG,
                    SopCardFacetRow.value.startswith(who.org.rstrip("/") + "/", autoescape=True),
                )
            )
        branches.append(and_(SopCardRow.visibility == CardVisibility.CARD_VISIBILITY_ORG_UNITS, or_(*orgs)))
    return or_(*branches)


class Cards(Repository[SopCardRow]):
    model, resource, key = SopCardRow, access.RESOURCE, ("card_id",)

    # Every card write goes through these three, and each bumps the library's version in its
    # transaction (recommend's in-process copies are checked against it).
    async def add(self, row: SopCardRow) -> SopCardRow:
        await super().add(row)
        await bump_library(self.uow)
        return row

    async def update_if_etag(self, row: SopCardRow, etag: str) -> SopCardRow:
        await super().update_if_etag(row, etag)
        await bump_library(self.uow)
        return row

    async def delete_if_etag(self, row: SopCardRow, etag: str) -> None:
        await super().delete_if_etag(row, etag)
        await bump_library(self.uow)

    @staticmethod
    def visible_to(who: Principal) -> ColumnElement[bool]:
        """The cards `who` may read (access.can_read in SQL)."""
        if who.acts_tenant_wide:
            return true()
        manager = access.is_manager(who)
        live = [PUBLISHED, RETIRED] if manager else [PUBLISHED]
        return or_(
            SopCardRow.author_user_id == who.user_id,
            and_(SopCardRow.status.in_([DRAFT, IN_REVIEW]), true() if manager else false()),
            and_(SopCardRow.status.in_(live), _audience(who)),
        )

    @staticmethod
    def matching(who: Principal, f: SopCardFilter) -> list[ColumnElement[bool]]:
        """The filter's conditions; statuses default to PUBLISHED for reps, all but RETIRED for managers."""
        if f.statuses:
            statuses = list(f.statuses)
        elif access.manages_cards(who):
            statuses = [DRAFT, IN_REVIEW, PUBLISHED]
        else:
            statuses = [PUBLISHED]
        where: list[ColumnElement[bool]] = [SopCardRow.status.in_(statuses)]
        if f.scenario:
            where.append(SopCardRow.scenario == f.scenario)
        if f.industry:
            where.append(or_(_facet(INDUSTRY, [f.industry]), _no_facet(INDUSTRY)))
        if f.stage_id:
            all_stages = and_(_no_facet(STAGE), SopCardRow.applies_to_leads.is_(False))
            where.append(or_(_facet(STAGE, [f.stage_id]), all_stages))
        if f.for_leads:
            where.append(SopCardRow.applies_to_leads.is_(True))
        if f.author_user_id:
            where.append(SopCardRow.author_user_id == f.author_user_id)
        if f.kind:
            where.append(SopCardRow.kind == f.kind)
        if f.tag:
            where.append(_facet(TAG, [f.tag]))
        if f.language_code:
            where.append(SopCardRow.language_code == f.language_code)
        return where

    async def page(
        self, who: Principal, f: SopCardFilter, order_by: str, page: PageRequest, query: str
    ) -> Page[SopCardRow]:
        where = [self.visible_to(who), *self.matching(who, f)]
        return await self.list(where, ORDERS[order_by], page, query, count=True)

    async def usage_page(
        self,
        who: Principal,
        f: SopCardFilter,
        order_by: str,
        since: date,
        partly_half_negative: bool,
        page: PageRequest,
        query: str,
    ) -> Page[SopCardRow]:
        """A page in a usage order: the figure descending (0 for a card without any), ties by card id.
        The token holds the last (figure, id), so a page follows on where the last one ended even when
        figures moved in between (a card whose figure changed may then show twice or not at all)."""
        where = [self.visible_to(who), *self.matching(who, f)]
        sums = window_sums(since, partly_half_negative).subquery()
        zero = 0.0 if USAGE_ORDERS[order_by] == "negative_rate_30d" else 0
        figure = func.coalesce(sums.c[USAGE_ORDERS[order_by]], zero)
        stmt = select(SopCardRow, figure).outerjoin(sums, sums.c.card_id == SopCardRow.card_id).where(*where)
        fingerprint = query_key(self.resource, order_by, query)
        if page.token:
            last = self.uow.tokens.decode(page.token, self.uow.tenant, fingerprint)
            if len(last) != 2:
                raise InvalidArgument.field("page_token", "not a page token of this request")
            stmt = stmt.where(or_(figure < last[0], and_(figure == last[0], SopCardRow.card_id > last[1])))
        stmt = stmt.order_by(figure.desc(), SopCardRow.card_id).limit(page.size + 1)
        rows = (await self.session.execute(stmt)).all()
        items = [row for row, _ in rows[: page.size]]
        token = ""
        if len(rows) > page.size:
            value, last_row = rows[page.size - 1][1], rows[page.size - 1][0]
            token = self.uow.tokens.encode(self.uow.tenant, fingerprint, [value, last_row.card_id])
        return Page(items, token, await self.count(where))

    async def by_ids(self, card_ids: Sequence[str]) -> dict[str, SopCardRow]:
        if not card_ids:
            return {}
        rows = await self.session.scalars(select(SopCardRow).where(SopCardRow.card_id.in_(list(card_ids))))
        return {row.card_id: row for row in rows}

    async def facets(self, card_id: str) -> dict[str, list[str]]:
        rows = await self.session.scalars(
            select(SopCardFacetRow)
            .where(SopCardFacetRow.card_id == card_id)
            .order_by(SopCardFacetRow.facet, SopCardFacetRow.value)
        )
        out: dict[str, list[str]] = {}
        for row in rows:
            out.setdefault(row.facet, []).append(row.value)
        return out

    async def org_paths(self, card_ids: Sequence[str]) -> dict[str, list[str]]:
        """Visible org paths per card, for the presenters' and access checks of many cards at once."""
        if not card_ids:
            return {}
        rows = await self.session.execute(
            select(SopCardFacetRow.card_id, SopCardFacetRow.value).where(
                SopCardFacetRow.card_id.in_(list(card_ids)), SopCardFacetRow.facet == ORG
            )
        )
        out: dict[str, list[str]] = {}
        for card_id, value in rows:
            out.setdefault(card_id, []).append(value)
        return out

    async def replace_facets(self, card_id: str, facets: Mapping[str, Sequence[str]]) -> None:
        await self.session.execute(
            delete(SopCardFacetRow)
            .where(SopCardFacetRow.card_id == card_id)
            .execution_options(synchronize_session=False)
        )
        rows = [
            SopCardFacetRow(card_id=card_id, facet=facet, value=value)
            for facet, values in facets.items()
            for value in dict.fromkeys(values)
        ]
        self.session.add_all(rows)
        await self.session.flush()

    async def remove(self, row: SopCardRow, etag: str) -> None:
        """Delete a never-published card and everything hanging off it."""
        for model in (SopCardFacetRow, SopCardStatusChangeRow):
            await self.session.execute(
                delete(model).where(model.card_id == row.card_id).execution_options(synchronize_session=False)
            )
        await self.delete_if_etag(row, etag)


class CardVersions(Repository[SopCardVersionRow]):
    model, resource, key = SopCardVersionRow, "knowledge.SopCardVersion", ("card_id", "version")

    async def page(self, card_id: str, page: PageRequest, query: str) -> Page[SopCardVersionRow]:
        where = [SopCardVersionRow.card_id == card_id]
        return await self.list(where, [Sort(SopCardVersionRow.version, descending=True)], page, query)


class StatusChanges(Repository[SopCardStatusChangeRow]):
    model, resource, key = SopCardStatusChangeRow, "knowledge.CardStatusChange", ("card_id", "seq")

    async def append(self, row: SopCardStatusChangeRow) -> SopCardStatusChangeRow:
        last = await self.session.scalar(
            select(func.max(SopCardStatusChangeRow.seq)).where(SopCardStatusChangeRow.card_id == row.card_id)
        )
        row.seq = int(last or 0) + 1
        return await self.add(row)

    async def page(self, card_id: str, page: PageRequest, query: str) -> Page[SopCardStatusChangeRow]:
        where = [SopCardStatusChangeRow.card_id == card_id]
        return await self.list(where, [Sort(SopCardStatusChangeRow.seq)], page, query)
