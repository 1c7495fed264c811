"""RecommendSopCards: the top published cards for what the rep has open, with why, impressions recorded.

Candidates are the published cards the caller may read that apply to the industry and
stage (or to leads, for a lead), less those the caller used on the same deal or lead
within `skip_recently_used`. For each: whether it names the industry / stage, its uses
by newcomers this week (the maintained counter: uses by reps who were newcomers when
they used it, today and the six UTC days before), and its lift in the (industry, stage) cell from the
lift cache; domain/recommend.py ranks and explains. Only the picked cards are loaded
whole. A newcomer is a rep whose first deal (knowledge's projection of pipeline's
deals) is within `newcomer_tenure` (default 180 days) of the use.

Each shown card is an impression, recorded once per (user, deal or lead, card, UTC
day): its `recommendation_id` is derived from them, so asking again the same day
shows the same ids and counts once (the monthly iteration's usage rate reads them).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from kit.auth import Principal
from kit.errors import Violations
from kit.resources import UnitOfWork
from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from services.knowledge.domain import recommend as rules
from services.knowledge.domain.lift import DEFAULT_MIN_SAMPLE, CellCounts, lift_of
from services.knowledge.knowledge_settings import STORE
from services.knowledge.repositories.outcomes import CellLifts, Impressions, LiftCells, Usage
from services.knowledge.repositories.recommend import CandidateCards
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


async def recommend_cards(
    uow: UnitOfWork, who: Principal, request: pb.RecommendSopCardsRequest, now: datetime
) -> list[Shown]:
    check(request)
    settings = (await STORE.get(uow)).recommendation
    count = request.max_results or settings.default_count or 3
    min_sample = settings.lift_min_sample or DEFAULT_MIN_SAMPLE
    policy = rules.Policy(
        count=count,
        exploration=not settings.exploration_disabled,
        exploration_max_sample=settings.exploration_max_sample or min_sample,
    )
    for_lead = bool(request.lead_id)
    found = await CandidateCards(uow).find(who, request.industry, request.stage_id, for_lead)
    skip = (
        settings.skip_recently_used.ToTimedelta() if settings.HasField("skip_recently_used") else timedelta(0)
    )
    usage = Usage(uow)
    if skip > timedelta(0) and (request.deal_id or request.lead_id):
        used = await usage.recently_used_on(who.user_id, request.deal_id, request.lead_id, now - skip)
        found = [c for c in found if c.card_id not in used]
    newcomer = await UsageDays(uow).newcomer_uses(window_start(now, WEEK_DAYS))
    if request.stage_id:
        lifts = await LiftCells(uow).lifts(request.industry, request.stage_id, min_sample)
    else:  # leads and customers: no stage, no cell
        lifts = CellLifts({}, lift_of(CellCounts(0, 0, 0, 0), min_sample))
    candidates = [
        rules.Candidate(
            card_id=c.card_id,
            industry_named=c.industry_named,
            stage_named=c.stage_named or (for_lead and c.for_leads),
            newcomer_uses_week=newcomer.get(c.card_id, 0),
            lift=lifts.of(c.card_id),
        )
        for c in found
    ]
    subject = request.deal_id or request.lead_id or f"customer:{request.customer_id}"
    day = now.date().isoformat()
    picks = rules.recommend(candidates, policy, rules.seed_of(uow.tenant, subject, day))
    rows = await CandidateCards(uow).rows([p.card_id for p in picks])
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
