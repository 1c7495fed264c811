"""The maintained usage counters per card and day (store_usage_days): written with each use and
each feedback, read for a card's 30-day figures, the list orders by usage and the week's newcomer uses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Float, Select, case, cast, distinct, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kit.resources import UnitOfWork
from salesops.knowledge.v1.usage_pb2 import FeedbackRating
from services.knowledge.store_outcomes import RepFirstDealRow
from services.knowledge.store_usage_days import CardNewcomerDayRow, CardUseDayRow
from services.knowledge.store_uses import CardUseRow

RATING_COLUMN: dict[int, str] = {
    int(FeedbackRating.FEEDBACK_RATING_FULLY): "fully",
    int(FeedbackRating.FEEDBACK_RATING_PARTLY): "partly",
    int(FeedbackRating.FEEDBACK_RATING_NOT_APPLICABLE): "not_applicable",
}
WINDOW_DAYS = 30
# The week's newcomer uses per (database, tenant, first day), with the (rows, total) they were read at.
MAX_CACHED = 256
_NEWCOMERS: dict[tuple[str, str, date], tuple[tuple[int, int], dict[str, int]]] = {}


def utc_day(at: datetime) -> date:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).date()


def window_start(now: datetime, days: int = WINDOW_DAYS) -> date:
    """The first UTC day of a window of `days` days ending today."""
    return utc_day(now) - timedelta(days=days - 1)


@dataclass(frozen=True)
class CardWindow:
    """A card's figures over the window."""

    uses: int = 0
    users: int = 0
    fully: int = 0
    partly: int = 0
    not_applicable: int = 0
    last_used_at: datetime | None = None


class UsageDays:
    def __init__(self, uow: UnitOfWork) -> None:
        self.session, self.tenant = uow.session, uow.tenant
        self.dialect = self.session.get_bind().dialect.name

    async def _bump(self, model: Any, keys: dict[str, Any], column: str) -> None:
        table = model.__table__
        stmt = (pg_insert if self.dialect == "postgresql" else sqlite_insert)(table)
        counters = {c.name: 0 for c in table.c if c.name not in keys and c.name != "tenant_id"}
        stmt = stmt.values(tenant_id=self.tenant, **keys, **{**counters, column: 1})
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=[c.name for c in table.primary_key.columns],
                set_={column: table.c[column] + 1},
            )
        )

    async def count_use(self, card_id: str, user_id: str, used_at: datetime, tenure: timedelta) -> None:
        """One more use of the card on its day; a newcomer's (first deal within `tenure` of the use)
        also in the newcomer counter."""
        day = utc_day(used_at)
        await self._bump(CardUseDayRow, {"card_id": card_id, "day": day}, "uses")
        first = await self.session.scalar(
            select(RepFirstDealRow.first_deal_at).where(RepFirstDealRow.user_id == user_id)
        )
        if first is not None and _aware(first) >= _aware(used_at) - tenure:
            await self._bump(CardNewcomerDayRow, {"day": day, "card_id": card_id}, "uses")

    async def count_feedback(self, card_id: str, rating: int, recorded_at: datetime) -> None:
        await self._bump(
            CardUseDayRow, {"card_id": card_id, "day": utc_day(recorded_at)}, RATING_COLUMN[rating]
        )

    async def newcomer_uses(self, since: date) -> dict[str, int]:
        """Uses by newcomers per card since `since` (a UTC day). Kept in memory per database, tenant and
        first day while the window's row count and total uses are unchanged (counters only grow, so
        any newcomer use changes the total): a call reads one covered index range, not the rows."""
        d = CardNewcomerDayRow
        n, total = (
            await self.session.execute(
                select(func.count(), func.coalesce(func.sum(d.uses), 0)).where(d.day >= since)
            )
        ).one()
        return await self.newcomer_uses_at(since, (int(n), int(total)))

    async def newcomer_uses_at(self, since: date, version: tuple[int, int]) -> dict[str, int]:
        """`newcomer_uses` with the window's (rows, total uses) already read."""
        d = CardNewcomerDayRow
        key = (str(self.session.get_bind().engine.url), self.tenant, since)
        cached = _NEWCOMERS.get(key)
        if cached is None or cached[0] != version:
            out: dict[str, int] = {}
            for card_id, uses in await self.session.execute(select(d.card_id, d.uses).where(d.day >= since)):
                out[card_id] = out.get(card_id, 0) + int(uses)
            cached = (version, out)
            if len(_NEWCOMERS) >= MAX_CACHED:
                _NEWCOMERS.pop(next(iter(_NEWCOMERS)))
            _NEWCOMERS[key] = cached
        return cached[1]

    async def windows(self, card_ids: Sequence[str], since: date) -> dict[str, CardWindow]:
        """Each card's uses and feedback since `since` from the counters; its distinct users and last
        use from its uses (the (card, time) index)."""
        if not card_ids:
            return {}
        ids = sorted(set(card_ids))
        d = CardUseDayRow
        sums = {
            c: (int(u or 0), int(f or 0), int(p or 0), int(n or 0))
            for c, u, f, p, n in await self.session.execute(
                select(
                    d.card_id,
                    func.sum(d.uses),
                    func.sum(d.fully),
                    func.sum(d.partly),
                    func.sum(d.not_applicable),
                )
                .where(d.card_id.in_(ids), d.day >= since)
                .group_by(d.card_id)
            )
        }
        start = datetime(since.year, since.month, since.day, tzinfo=UTC)
        u = CardUseRow
        users = {
            c: int(n)
            for c, n in await self.session.execute(
                select(u.card_id, func.count(distinct(u.user_id)))
                .where(u.card_id.in_(ids), u.used_at >= start)
                .group_by(u.card_id)
            )
        }
        last = {
            c: _aware(at)
            for c, at in await self.session.execute(
                select(u.card_id, func.max(u.used_at)).where(u.card_id.in_(ids)).group_by(u.card_id)
            )
            if at is not None
        }
        out: dict[str, CardWindow] = {}
        for c in ids:
            uses, fully, partly, not_applicable = sums.get(c, (0, 0, 0, 0))
            out[c] = CardWindow(uses, users.get(c, 0), fully, partly, not_applicable, last.get(c))
        return out


def window_sums(since: date, partly_negative: bool) -> Select[Any]:
    """Per card over the window: `uses_30d` and `negative_rate_30d` (0 without feedback), for the list
    orders. Negative as in the monthly iteration: not applicable, and partly as half when the tenant says so."""
    d = CardUseDayRow
    rated = func.sum(d.fully + d.partly + d.not_applicable)
    negative = func.sum(d.not_applicable) + (func.sum(d.partly) * 0.5 if partly_negative else 0)
    rate = case((rated > 0, cast(negative, Float) / cast(rated, Float)), else_=0.0)
    return (
        select(
            d.card_id.label("card_id"),
            func.sum(d.uses).label("uses_30d"),
            rate.label("negative_rate_30d"),
        )
        .where(d.day >= since)
        .group_by(d.card_id)
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
