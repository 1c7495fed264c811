"""Why we lose: lost deals of the caller's scope counted by reason and competitor (SummarizeLostReasons)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement

from kit.auth import Principal
from kit.errors import InvalidArgument
from kit.resources import UnitOfWork
from services.pipeline import pipeline_settings
from services.pipeline.forecasting import check_scope
from services.pipeline.repositories.deals import in_org, visible_to
from services.pipeline.repositories.lost import Count, LostDeals
from services.pipeline.store import DealRow

DEFAULT_WINDOW = timedelta(days=90)


@dataclass(frozen=True)
class Summary:
    total: int
    amount: int
    reasons: list[Count]  # categories (code "") and refinements, most frequent first
    competitors: list[Count]
    currency: str


async def summarize(
    uow: UnitOfWork,
    who: Principal,
    *,
    org_path: str,
    user_ids: list[str],
    lost_from: date | None,
    lost_to: date | None,
    stage_ids: list[str],
    today: date,
) -> Summary:
    org = org_path.strip("/")
    check_scope(who, org)
    end = lost_to or today
    start = lost_from or end - DEFAULT_WINDOW
    if start > end:
        raise InvalidArgument.field("lost_from", "must not be after lost_to")
    # Dates are UTC days until the tenant zone arrives with the pipeline settings.
    where: list[ColumnElement[bool]] = [
        visible_to(who),
        DealRow.closed_at >= datetime.combine(start, time(), UTC),
        DealRow.closed_at < datetime.combine(end + timedelta(days=1), time(), UTC),
    ]
    if org:
        where.append(in_org(DealRow.org_path, org))
    if user_ids:
        where.append(DealRow.owner_user_id.in_(user_ids))
    if stage_ids:
        where.append(DealRow.lost_stage_id.in_(stage_ids))
    repo = LostDeals(uow)
    fine = await repo.by_reason(where)
    per_category: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for c in fine:
        per_category[c.category][0] += c.count
        per_category[c.category][1] += c.amount
    reasons = [Count(cat, "", n, a) for cat, (n, a) in per_category.items()]
    reasons += [c for c in fine if c.code]
    reasons.sort(key=lambda c: (-c.count, c.category, c.code))
    competitors = sorted(await repo.by_competitor(where), key=lambda c: (-c.count, c.code))
    total = sum(c.count for c in fine)
    currency = await pipeline_settings.base_currency(uow)
    return Summary(total, sum(c.amount for c in fine), reasons, competitors, currency)
