"""Contributor points: the ledger's bookings, use and praise awards, admin adjustments, the leaderboard.

Every booking names its source (`source_key`, unique per tenant): a submission, an
acceptance, a use or a "fully" rating of a card made from a contribution, an admin's
request. A redelivered event or a repeated request finds its entry and books nothing
more. Use and praise points come from the service's own CardUsed / FeedbackRecorded
events (consumer in points_consumer.py); not for the contributor's own uses, and at
most PointsPolicy.monthly_use_points_cap_per_card per card and month (tenant zone).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from ulid import ULID

from kit.auth import Principal
from kit.errors import AlreadyExists, FieldViolation, InvalidArgument
from kit.resources import UnitOfWork
from salesops.knowledge.v1.contribution_pb2 import LeaderboardPeriod, PointReason
from salesops.knowledge.v1.usage_pb2 import FeedbackRating
from services.knowledge import access, iteration, knowledge_settings
from services.knowledge.domain import contributions as rules
from services.knowledge.repositories.contributions import Contributions, PointEntries, Standing
from services.knowledge.store_contributions import PointEntryRow

ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_\-]{0,63}$")
MAX_ADJUSTMENT = 100_000
PERIODS = {
    LeaderboardPeriod.LEADERBOARD_PERIOD_UNSPECIFIED: "month",
    LeaderboardPeriod.LEADERBOARD_PERIOD_MONTH: "month",
    LeaderboardPeriod.LEADERBOARD_PERIOD_QUARTER: "quarter",
    LeaderboardPeriod.LEADERBOARD_PERIOD_YEAR: "year",
    LeaderboardPeriod.LEADERBOARD_PERIOD_ALL_TIME: "all",
}


async def book(
    uow: UnitOfWork,
    *,
    user_id: str,
    user_org: str,
    points: int,
    reason: int,
    source_key: str,
    at: datetime,
    by: str,
    contribution_id: str = "",
    card_id: str = "",
    note: str = "",
    entry_id: str = "",
) -> PointEntryRow | None:
    """One entry per source; the existing one when the source was booked already; None for 0 points."""
    repo = PointEntries(uow)
    found = await repo.by_source(source_key)
    if found is not None or points == 0:
        return found
    return await repo.add(
        PointEntryRow(
            entry_id=entry_id or str(ULID()),
            user_id=user_id,
            user_org=user_org,
            points=points,
            reason=reason,
            contribution_id=contribution_id,
            card_id=card_id,
            note=note,
            source_key=source_key,
            created_at=at,
            created_by=by,
        )
    )


async def award_card_use(
    uow: UnitOfWork, *, card_id: str, use_id: str, user_id: str, praised: bool, at: datetime
) -> PointEntryRow | None:
    """Points to the contributor behind a LIGHT card another rep used (or rated "fully")."""
    source_key = f"{'praised' if praised else 'used'}:{use_id}"
    repo = PointEntries(uow)
    if (found := await repo.by_source(source_key)) is not None:
        return found
    contribution = await Contributions(uow).of_card(card_id)
    if contribution is None or contribution.contributor_user_id == user_id:
        return None  # not a contributed card, or the contributor's own use
    settings = await knowledge_settings.current(uow)
    policy = settings.points
    amount = policy.contributed_card_praised if praised else policy.contributed_card_used
    zone = iteration.zone_of(settings.iteration)
    local = at.astimezone(zone).date()
    start, end = iteration.window(local.year, local.month, zone)
    allowed = rules.capped(
        amount, await repo.use_points(card_id, start, end), policy.monthly_use_points_cap_per_card
    )
    if not allowed:
        return None
    return await book(
        uow,
        user_id=contribution.contributor_user_id,
        user_org=contribution.contributor_org,
        points=allowed,
        reason=PointReason.POINT_REASON_CONTRIBUTED_CARD_PRAISED
        if praised
        else PointReason.POINT_REASON_CONTRIBUTED_CARD_USED,
        source_key=source_key,
        at=at,
        by=iteration.SYSTEM_USER,
        contribution_id=contribution.contribution_id,
        card_id=card_id,
    )


def is_praise(rating: int) -> bool:
    return rating == FeedbackRating.FEEDBACK_RATING_FULLY


async def adjust(
    uow: UnitOfWork, who: Principal, request_id: str, user_id: str, points: int, note: str, at: datetime
) -> PointEntryRow:
    """AdjustPoints (admin): the request id is the entry id; a replay returns it, other content ALREADY_EXISTS."""
    access.require_admin(who)
    note = note.strip()
    problems = []
    if not ID.match(request_id):
        problems.append(("request_id", "required: a client-made ULID"))
    if not user_id.strip() or len(user_id) > 128:
        problems.append(("user_id", "required, at most 128 characters"))
    if points == 0 or abs(points) > MAX_ADJUSTMENT:
        problems.append(("points", f"non-zero, at most {MAX_ADJUSTMENT} either way"))
    if not note or len(note) > 1000:
        problems.append(("note", "required: say why (at most 1,000 characters)"))
    if problems:
        raise InvalidArgument(
            f"invalid adjustment: {'; '.join(f'{f}: {d}' for f, d in problems)}",
            [FieldViolation(f, d) for f, d in problems],
        )
    repo = PointEntries(uow)
    found = await repo.find(request_id)
    if found is not None:
        if (found.user_id, found.points, found.note, found.reason) != (
            user_id,
            points,
            note,
            PointReason.POINT_REASON_ADJUSTMENT,
        ):
            raise AlreadyExists(repo.resource, request_id, "another entry already has this request id")
        return found
    entry = await book(
        uow,
        user_id=user_id,
        user_org=await Contributions(uow).latest_org(user_id),
        points=points,
        reason=PointReason.POINT_REASON_ADJUSTMENT,
        source_key=f"adjust:{request_id}",
        at=at,
        by=who.user_id,
        note=note,
        entry_id=request_id,
    )
    assert entry is not None  # points != 0
    return entry


async def period_bounds(
    uow: UnitOfWork, period: int, at: datetime
) -> tuple[datetime | None, datetime | None]:
    """The leaderboard period holding the tenant's today, as UTC instants; (None, None) for all time."""
    if period not in PERIODS:
        raise InvalidArgument.field("period", "a LeaderboardPeriod")
    settings = await knowledge_settings.current(uow)
    zone = iteration.zone_of(settings.iteration)
    dates = rules.period_dates(PERIODS[period], at.astimezone(zone).date())  # type: ignore[index]
    if dates is None:
        return None, None

    def instant(d: date) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(UTC)

    return instant(dates[0]), instant(dates[1])


async def leaderboard(
    uow: UnitOfWork, start: datetime | None, end: datetime | None, org: str
) -> tuple[list[rules.Ranked], dict[str, Standing], dict[str, tuple[int, int]]]:
    """Every ranked contributor of the period and org, their standing and (submitted, accepted)."""
    standings = await PointEntries(uow).standings(start, end, org)
    ranked = rules.rank([(s.user_id, s.points) for s in standings])
    counts = await Contributions(uow).counts_by_contributor(start, end, [s.user_id for s in standings])
    return ranked, {s.user_id: s for s in standings}, counts
