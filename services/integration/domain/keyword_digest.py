"""The weekly "top keywords customers raised" digest: which week, and the ranking. Pure.

A digest covers the previous Monday-to-Sunday week in the tenant's time zone,
counts only what customers said, and ranks keywords by customer mentions (then
conversations, then term), with the week before's mentions for the trend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_ZONE = "Asia/Shanghai"
DEFAULT_TOP = 10


@dataclass(frozen=True)
class Week:
    monday: date
    start: datetime  # aware, tenant zone midnight
    end: datetime  # the next Monday's midnight (exclusive)

    @property
    def key(self) -> str:
        return self.monday.isoformat()

    def before(self) -> Week:
        return week_starting(self.monday - timedelta(days=7), self.start.tzinfo)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Figure:
    keyword_id: str
    term: str
    category: int
    mentions: int
    conversations: int
    leads: int
    deals: int


@dataclass(frozen=True)
class Trend:
    figure: Figure
    previous_mentions: int


def week_starting(monday: date, zone: ZoneInfo | object) -> Week:
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(str(zone))
    start = datetime.combine(monday, time(0), tzinfo=tz)
    end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=tz)
    return Week(monday, start, end)


def previous_week(at: datetime, zone: str = DEFAULT_ZONE) -> Week:
    """The last complete Monday-to-Sunday week before `at`, in `zone`."""
    tz = ZoneInfo(zone)
    local = at.astimezone(tz).date()
    this_monday = local - timedelta(days=local.weekday())
    return week_starting(this_monday - timedelta(days=7), tz)


def rank(figures: Iterable[Figure], previous: Mapping[str, int], top: int = DEFAULT_TOP) -> list[Trend]:
    ordered = sorted(figures, key=lambda f: (-f.mentions, -f.conversations, f.term, f.keyword_id))
    return [Trend(f, previous.get(f.keyword_id, 0)) for f in ordered if f.mentions > 0][:top]
