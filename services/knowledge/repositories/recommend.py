"""Candidate cards for a recommendation: where each published card applies and who sees it.

Recommending runs on every deal a rep opens, and filtering 10,000 cards by facets in
SQL (an EXISTS per facet per card) cost more than everything else together. So the
published library's placement (industries, stages, leads, audience) is read once per
tenant and database and kept in memory, and re-read when the library changes: every
call first reads the library's version (repositories/recommend_versions.py: the
`sop_card_library` row every card write bumps). Matching and visibility are then the same rules in Python as
`Cards.matching` / `Cards.visible_to` (domain.cards.audience_sees), and their
result is kept per context and audience (what the callers of a team share) in
the library, so a call rebuilds none of it. The picked cards' rows are kept in the
library too (copies no session holds), so a warm call reads none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from kit.auth import Principal
from kit.resources import UnitOfWork
from services.knowledge import access
from services.knowledge.domain.cards import PUBLISHED, audience_sees
from services.knowledge.repositories.cards import INDUSTRY, ORG, STAGE
from services.knowledge.repositories.recommend_versions import LibraryVersion, db_key
from services.knowledge.store import SopCardFacetRow, SopCardRow

MAX_LIBRARIES = 256  # tenants x databases kept; the least recently loaded goes first
# Picked cards' rows kept per library: the exploration slot reaches most of a large library over a
# day's deals (10,000 cards of ~1.5 kB are ~15 MB per such tenant).
MAX_ROWS = 10_000
MAX_AUDIENCES = 1000  # candidate lists kept per library (contexts x audiences)


@dataclass(frozen=True)
class CandidateCard:
    card_id: str
    industry_named: bool  # lists the industry asked for (else: for every industry)
    stage_named: bool  # lists the stage asked for (else: for every stage)
    for_leads: bool


@dataclass(frozen=True)
class Placement:
    card_id: str
    industries: frozenset[str]
    stages: frozenset[str]
    for_leads: bool
    visibility: int
    author: str
    org_paths: list[str]

    def applies(self, industry: str, stage_id: str, for_lead: bool) -> bool:
        """Cards.matching for published cards: the industry (or all), the stage (or all, not lead-only
        cards), or leads."""
        if industry and self.industries and industry not in self.industries:
            return False
        if for_lead:
            return self.for_leads
        if stage_id:
            return stage_id in self.stages or (not self.stages and not self.for_leads)
        return True


AudienceKey = tuple[str, str, bool, bool, bool, str]


@dataclass
class Library:
    version: LibraryVersion
    cards: list[Placement]
    # The candidates per context and audience (tenant-wide, manager, org): what most callers share.
    seen: dict[AudienceKey, list[CandidateCard]] = field(default_factory=dict)
    by_author: dict[str, list[Placement]] = field(default_factory=dict)
    rows: dict[str, SopCardRow] = field(default_factory=dict)  # detached copies, read only

    def __post_init__(self) -> None:
        for p in self.cards:
            self.by_author.setdefault(p.author, []).append(p)

    def audience(
        self, who: Principal, industry: str, stage_id: str, for_lead: bool
    ) -> tuple[AudienceKey, list[CandidateCard]]:
        """The candidates every caller of `who`'s audience sees here (its key names that audience)."""
        manager = access.is_manager(who)
        key = (industry, stage_id, for_lead, who.acts_tenant_wide, manager, who.org)
        found = self.seen.get(key)
        if found is None:
            if len(self.seen) > MAX_AUDIENCES:
                self.seen.clear()
            found = self.seen[key] = [
                _candidate(p, industry, stage_id)
                for p in self.cards
                if p.applies(industry, stage_id, for_lead) and _audience_sees(who, manager, p)
            ]
        return key, found

    def own(self, who: Principal, industry: str, stage_id: str, for_lead: bool) -> list[CandidateCard]:
        """The caller's own cards that apply here where their audience would not see them."""
        manager = access.is_manager(who)
        return [
            _candidate(p, industry, stage_id)
            for p in self.by_author.get(who.user_id, ())
            if p.applies(industry, stage_id, for_lead) and not _audience_sees(who, manager, p)
        ]

    def candidates(self, who: Principal, industry: str, stage_id: str, for_lead: bool) -> list[CandidateCard]:
        _, found = self.audience(who, industry, stage_id, for_lead)
        own = self.own(who, industry, stage_id, for_lead)
        return sorted(found + own, key=lambda c: c.card_id) if own else found


_LIBRARIES: dict[tuple[str, str], Library] = {}


def _audience_sees(who: Principal, manager: bool, p: Placement) -> bool:
    """access.can_read for a published card, but for its author."""
    if who.acts_tenant_wide:
        return True
    return audience_sees(p.visibility, p.org_paths, org=who.org, manager=manager, admin=False)


def _candidate(p: Placement, industry: str, stage_id: str) -> CandidateCard:
    return CandidateCard(p.card_id, industry in p.industries, stage_id in p.stages, p.for_leads)


_CARDS = SopCardRow.__table__


def _detached(values: Mapping[str, Any]) -> SopCardRow:
    """A card row that belongs to no session (nothing expires or refreshes it): shared, read only."""
    return SopCardRow(**values)


class CandidateCards:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow, self.session, self.tenant = uow, uow.session, uow.tenant

    async def _load(self, version: LibraryVersion) -> Library:
        rows = await self.session.execute(
            select(
                SopCardRow.card_id,
                SopCardRow.applies_to_leads,
                SopCardRow.visibility,
                SopCardRow.author_user_id,
            ).where(SopCardRow.status == PUBLISHED)
        )
        cards = {c: (bool(leads), int(vis), str(author)) for c, leads, vis, author in rows}
        facets = await self.session.execute(
            select(SopCardFacetRow.card_id, SopCardFacetRow.facet, SopCardFacetRow.value).where(
                SopCardFacetRow.facet.in_([INDUSTRY, STAGE, ORG]),
                SopCardFacetRow.card_id.in_(select(SopCardRow.card_id).where(SopCardRow.status == PUBLISHED)),
            )
        )
        values: dict[tuple[str, str], set[str]] = {}
        for card_id, facet, value in facets:
            values.setdefault((card_id, facet), set()).add(value)
        placements = [
            Placement(
                card_id,
                frozenset(values.get((card_id, INDUSTRY), ())),
                frozenset(values.get((card_id, STAGE), ())),
                leads,
                vis,
                author,
                sorted(values.get((card_id, ORG), ())),
            )
            for card_id, (leads, vis, author) in sorted(cards.items())
        ]
        return Library(version, placements)

    async def library(self, version: LibraryVersion) -> Library:
        """The published library at `version` (read by recommend_versions), from memory when unchanged."""
        key = (db_key(self.uow), self.tenant)
        library = _LIBRARIES.get(key)
        if library is None or library.version != version:
            library = await self._load(version)
            if len(_LIBRARIES) >= MAX_LIBRARIES:
                _LIBRARIES.pop(next(iter(_LIBRARIES)))
            _LIBRARIES[key] = library
        return library

    async def rows(self, library: Library, card_ids: Sequence[str]) -> dict[str, SopCardRow]:
        """The picked cards, whole: from the library's copies, the others in one query (and kept).
        Only published cards are asked for, and any card write moves the library to a new version."""
        missing = [c for c in card_ids if c not in library.rows]
        if missing:
            # Core rows (no identity map, no instances to copy): the tenant named here, as the
            # session's criteria apply to mapped entities only.
            found = await self.session.execute(
                select(_CARDS).where(_CARDS.c.tenant_id == self.tenant, _CARDS.c.card_id.in_(missing))
            )
            if len(library.rows) + len(missing) > MAX_ROWS:
                library.rows.clear()
            for row in found.mappings():
                library.rows[row["card_id"]] = _detached(dict(row))
        return {c: library.rows[c] for c in card_ids if c in library.rows}
