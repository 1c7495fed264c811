"""The daily digest of one user: which inbox entries go in which section, and when it is due.

Sections: due today (by the user's local date), breached since the previous
digest, approvals waiting, awaiting the user's acknowledgement. Most urgent
first; at most 20 entries shown per section, the total kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DUE_TODAY, BREACHED, APPROVALS_WAITING, AWAITING_ACK = (
    "due_today",
    "breached",
    "approvals_waiting",
    "awaiting_ack",
)
SECTIONS = (DUE_TODAY, BREACHED, APPROVALS_WAITING, AWAITING_ACK)
SHOWN = 20
DEFAULT_SEND_TIME = time(8, 30)


@dataclass(frozen=True)
class Entry:
    notification_id: str
    category: str
    priority: int
    title: str
    created_at: datetime
    due_time: datetime | None
    open: bool
    ack_required: bool


@dataclass
class Section:
    kind: str
    entries: list[Entry] = field(default_factory=list)
    total: int = 0


def build(entries: Iterable[Entry], day: date, time_zone: str) -> list[Section]:
    """Non-empty sections in display order for `day` in `time_zone`."""
    tz = ZoneInfo(time_zone)
    start = datetime.combine(day, time(0), tzinfo=tz)
    since = start - timedelta(days=1)
    buckets: dict[str, dict[str, Entry]] = {kind: {} for kind in SECTIONS}
    for e in entries:
        if e.category == "digest":
            continue
        if e.open and e.due_time is not None and e.due_time.astimezone(tz).date() == day:
            buckets[DUE_TODAY].setdefault(e.notification_id, e)
        if e.category == "sla_breach" and since <= e.created_at < start + timedelta(days=1):
            buckets[BREACHED].setdefault(e.notification_id, e)
        if e.open and e.category == "approval_waiting":
            buckets[APPROVALS_WAITING].setdefault(e.notification_id, e)
        if e.open and e.ack_required:
            buckets[AWAITING_ACK].setdefault(e.notification_id, e)
    sections = []
    for kind in SECTIONS:
        items = sorted(buckets[kind].values(), key=lambda e: (-e.priority, e.due_time or e.created_at))
        if items:
            sections.append(Section(kind, items[:SHOWN], len(items)))
    return sections


def due_date(now: datetime, time_zone: str, send_time: time = DEFAULT_SEND_TIME) -> date | None:
    """The local date whose digest is due at `now` (send time reached today), else None."""
    local = now.astimezone(ZoneInfo(time_zone))
    return local.date() if local.time() >= send_time else None
