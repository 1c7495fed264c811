"""RecommendSopCards: the top published cards for what the rep has open, with why, impressions recorded.

Candidates are the published cards the caller may read that apply to the industry and
stage (or to leads, for a lead), less those the caller used on the same deal or lead
within `skip_recently_used`. For each: whether it names the industry / stage, its uses
by newcomers this week (the maintained counter: uses by reps who were newcomers when
they used it, today and the six UTC days before), and its lift in the (industry, stage) cell from the
lift cache; domain/recommend.py ranks and explains. Only the picked cards are loaded
whole. Every one of these is kept in memory while the database says it is unchanged
(repositories/recommend_versions.py reads every version in one statement), down to the
ranked candidates of the context and audience, so a warm call is that statement, the
impressions and the commit. A newcomer is a rep whose first deal (knowledge's projection of pipeline's
deals) is within `newcomer_tenure` (default 180 days) of the use.

Each shown card is an impression, recorded once per (user, deal or lead, card, UTC
day): its `recommendation_id` is derived from them, so asking again the same day
shows the same ids and counts once (the monthly iteration's usage rate reads them).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from kit.auth import Principal
from kit.errors import Violations
from kit.resources import UnitOfWork
from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1 import settings_pb2 as ks
from services.knowledge.domain import recommend as rules
from services.knowledge.domain.lift import DEFAULT_MIN_SAMPLE, CellCounts, lift_of
from services.knowledge.knowledge_settings import STORE
from services.knowledge.repositories.outcomes import CellLifts, Impressions, LiftCells, Usage
from services.knowledge.repositories.recommend import CandidateCard, CandidateCards
from services.knowledge.repositories.recommend_versions import (
    SettingsVersion,
    Versions,
    db_key,
    read_versions,
)
from services.knowledge.repositories.usage_days import UsageDays, window_start
from services.knowledge.store import SopCardRow

MAX_RESULTS = 10
WEEK_DAYS = 7  # "this week": today and the six UTC days before
MAX_ID_CHARS = 64


@dataclass(frozen=True)
class Shown:
    recommendation_id: str
    pick: rules.Pick
    row: SopCardRow


def check(request: pb.RecommendSopCardsRequest) -> None:
    v = Violations()
    if request.deal_id and request.lead_id:
        v.add("lead_id", "set the deal or the lead, not both")
    if not (request.deal_id or request.lead_id or request.customer_id):
        v.add("deal_id", "name the deal, lead or customer open on screen")
    for name in ("deal_id", "lead_id", "customer_id", "industry", "stage_id"):
        if len(getattr(request, name)) > MAX_ID_CHARS:
            v.add(name, f"at most {MAX_ID_CHARS} characters")
    if request.lead_id and request.stage_id:
        v.add("stage_id", "leads have no pipeline stage")
    if not 0 <= request.max_results <= MAX_RESULTS:
        v.add("max_results", f"0-{MAX_RESULTS} (0 = the tenant's default)")
    v.raise_if_any("invalid recommendation request")


def recommendation_id(tenant: str, user: str, subject: str, card_id: str, day: str) -> str:
    digest = hashlib.sha256(f"{tenant}|{user}|{subject}|{card_id}|{day}".encode()).digest()
    return "R" + base64.b32encode(digest).decode()[:25]


# The tenant's settings per (database, tenant), with the (version, updated_at) they were read at.
_SETTINGS: dict[tuple[str, str], tuple[SettingsVersion, ks.KnowledgeSettings]] = {}
# Ranked candidates per (database, tenant, context, audience, minimum sample, exploration sample),
# with the versions of the library, the week's newcomer uses and the cell they were ranked from.
_RANKED: dict[tuple[Any, ...], tuple[tuple[Any, ...], rules.Ranked]] = {}
MAX_CACHED = 256


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if key not in cache and len(cache) >= MAX_CACHED:
        cache.pop(next(iter(cache)))  # the oldest entry
    cache[key] = value


def _skip_of(settings: ks.KnowledgeSettings) -> timedelta:
    policy = settings.recommendation
    return policy.skip_recently_used.ToTimedelta() if policy.HasField("skip_recently_used") else timedelta(0)


async def recommend_cards(
    uow: UnitOfWork, who: Principal, request: pb.RecommendSopCardsRequest, now: datetime
) -> list[Shown]:
    """One statement reads every version (recommend_versions); a warm call then ranks from memory
    and writes its impressions: two statements and the commit."""
    check(request)
    db = db_key(uow)
    subject_named = bool(request.deal_id or request.lead_id)
    known = _SETTINGS.get((db, uow.tenant))
    # The recent uses are read with the versions for the skip window of the settings last seen;
    # if the settings changed since, and the window with them, they are read again below.
    known_skip = _skip_of(known[1]) if known else timedelta(0)
    since_week = window_start(now, WEEK_DAYS)
    versions = await read_versions(
        uow,
        newcomers_since=since_week,
        industry=request.industry,
        stage_id=request.stage_id,
        user_id=who.user_id,
        deal_id=request.deal_id,
        lead_id=request.lead_id,
        recent_since=now - known_skip if known and known_skip > timedelta(0) else None,
    )
    if known is not None and known[0] == versions.settings:
        settings = known[1]
    else:
        settings = await STORE.get(uow)
        _remember(_SETTINGS, (db, uow.tenant), (versions.settings, settings))
    policy_settings = settings.recommendation
    count = request.max_results or policy_settings.default_count or 3
    min_sample = policy_settings.lift_min_sample or DEFAULT_MIN_SAMPLE
    policy = rules.Policy(
        count=count,
        exploration=not policy_settings.exploration_disabled,
        exploration_max_sample=policy_settings.exploration_max_sample or min_sample,
    )
    skip = _skip_of(settings)
    used: frozenset[str] = frozenset()
    if skip > timedelta(0) and subject_named:
        if versions.recent is not None and skip == known_skip:
            used = versions.recent
        else:
            used = frozenset(
                await Usage(uow).recently_used_on(who.user_id, request.deal_id, request.lead_id, now - skip)
            )
    for_lead = bool(request.lead_id)
    cards = CandidateCards(uow)
    library = await cards.library(versions.library)
    audience, found = library.audience(who, request.industry, request.stage_id, for_lead)
    own = library.own(who, request.industry, request.stage_id, for_lead)
    key = (db, uow.tenant, audience, min_sample, policy.exploration_max_sample)
    state = (versions.library, since_week, versions.newcomers, versions.cell)
    cached = _RANKED.get(key)
    # The audience's ranking serves this caller unless they add own cards or skip one of its cards.
    shared = not own and not (used and any(c.card_id in used for c in found))
    if shared and cached is not None and cached[0] == state:
        ranked = cached[1]
    else:
        candidates = sorted(found + own, key=lambda c: c.card_id) if own else found
        kept = [c for c in candidates if c.card_id not in used]
        ranked = rules.rank(await _scored(uow, kept, request, since_week, versions, min_sample), policy)
        if shared:
            _remember(_RANKED, key, (state, ranked))
    subject = request.deal_id or request.lead_id or f"customer:{request.customer_id}"
    day = now.date().isoformat()
    picks = rules.pick(ranked, policy, rules.seed_of(uow.tenant, subject, day))
    rows = await cards.rows(library, [p.card_id for p in picks])
    shown = [
        Shown(recommendation_id(uow.tenant, who.user_id, subject, p.card_id, day), p, rows[p.card_id])
        for p in picks
        if p.card_id in rows
    ]
    await Impressions(uow).record(
        [
            {
                "recommendation_id": s.recommendation_id,
                "card_id": s.pick.card_id,
                "user_id": who.user_id,
                "deal_id": request.deal_id,
                "lead_id": request.lead_id,
                "rank": s.pick.rank,
                "exploration": s.pick.exploration,
                "shown_on": now.date(),
                "shown_at": now,
            }
            for s in shown
        ]
    )
    return shown


async def _scored(
    uow: UnitOfWork,
    found: list[CandidateCard],
    request: pb.RecommendSopCardsRequest,
    since_week: date,
    versions: Versions,
    min_sample: int,
) -> list[rules.Candidate]:
    """The candidates with their figures: newcomer uses this week, lift in the cell."""
    newcomer = await UsageDays(uow).newcomer_uses_at(since_week, versions.newcomers)
    if request.stage_id:
        lifts = await LiftCells(uow).lifts_at(request.industry, request.stage_id, min_sample, versions.cell)
    else:  # leads and customers: no stage, no cell
        lifts = CellLifts({}, lift_of(CellCounts(0, 0, 0, 0), min_sample))
    for_lead = bool(request.lead_id)
    return [
        rules.Candidate(
            card_id=c.card_id,
            industry_named=c.industry_named,
            stage_named=c.stage_named or (for_lead and c.for_leads),
            newcomer_uses_week=newcomer.get(c.card_id, 0),
            lift=lifts.of(c.card_id),
        )
        for c in found
    ]
