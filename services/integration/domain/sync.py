"""Sync rules: which data a connector kind can sync, schedules, cursors, lag and status. Pure.

Lag is how far our copy may be behind the source: now minus the time our copy
is complete up to. A run that reached the source's end (the source said it has
nothing newer) makes the copy complete up to that run's start; a run that
stopped with more to read makes it complete up to the newest record it synced.
So an idle source (runs succeed, nothing new) keeps the lag small however old
its newest record is, while failing runs, or runs that make no progress, let
the lag grow: that is a stuck sync, and past the threshold an alert opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import sync_pb2 as s

DEFAULT_THRESHOLD = timedelta(hours=24)
EXPLANATION_WINDOW = timedelta(hours=24)
MIN_INTERVAL = timedelta(minutes=5)
MAX_PAGES = 50  # per run; a source with more is BEHIND and the next run goes on
PAGE_SIZE = 100
MAX_RECORD_ERRORS = 20
# A run RUNNING this long was abandoned (its worker died): another may start.
ABANDONED_AFTER = timedelta(minutes=30)

# Collection read from the source for each data kind.
PATHS: dict[int, str] = {
    s.SYNC_DATA_KIND_PAYMENTS: "payments",
    s.SYNC_DATA_KIND_INVOICES: "invoices",
    s.SYNC_DATA_KIND_CONTRACTS: "contracts",
    s.SYNC_DATA_KIND_SHIPMENTS: "shipments",
    s.SYNC_DATA_KIND_STOCK: "stock",
}
# The domain event each kind's records map to (STOCK: the stock snapshot, no event).
MAPPED: dict[int, int] = {
    s.SYNC_DATA_KIND_PAYMENTS: c.MAPPED_EVENT_TYPE_PAYMENT_RECEIVED,
    s.SYNC_DATA_KIND_INVOICES: c.MAPPED_EVENT_TYPE_INVOICE_ISSUED,
    s.SYNC_DATA_KIND_CONTRACTS: c.MAPPED_EVENT_TYPE_CONTRACT_SIGNED,
    s.SYNC_DATA_KIND_SHIPMENTS: c.MAPPED_EVENT_TYPE_SHIPMENT_DISPATCHED,
}
KINDS_BY_CONNECTOR: dict[int, frozenset[int]] = {
    c.CONNECTOR_KIND_FINANCE: frozenset({s.SYNC_DATA_KIND_PAYMENTS, s.SYNC_DATA_KIND_INVOICES}),
    c.CONNECTOR_KIND_ERP: frozenset(PATHS),
    c.CONNECTOR_KIND_E_SIGNATURE: frozenset({s.SYNC_DATA_KIND_CONTRACTS}),
}


def kind_problem(connector_kind: int, data_kind: int) -> str:
    """Why this connector cannot sync this kind of data; empty when it can."""
    if not data_kind:
        return "required"
    if data_kind not in PATHS:
        return "this data kind cannot be synced yet"
    if data_kind not in KINDS_BY_CONNECTOR.get(connector_kind, frozenset()):
        return "the connector's kind does not hold this data"
    return ""


def schedule_problem(schedule: s.SyncSchedule) -> tuple[str, str] | None:
    which = schedule.WhichOneof("spec")
    if which is None:
        return ("schedule", "an interval or a cron expression is required")
    if which == "interval":
        if schedule.interval.ToTimedelta() < MIN_INTERVAL:
            return ("schedule.interval", "at least 5 minutes")
        return None
    fields = schedule.cron.split()
    if len(fields) != 5 or not all(all(ch.isdigit() or ch in "*/,-" for ch in f) for f in fields):
        return ("schedule.cron", "five fields of digits and * / , - (minute hour day month weekday)")
    return None


@dataclass(frozen=True)
class Cursor:
    """Position in the source: the change time and id of the last record synced."""

    updated_at: str = ""
    external_id: str = ""

    def encode(self) -> str:
        return f"{self.updated_at}|{self.external_id}" if self.updated_at else ""

    @classmethod
    def decode(cls, text: str) -> Cursor:
        updated_at, _, external_id = text.partition("|")
        return cls(updated_at, external_id)


class Status(Enum):
    NEVER_RUN = s.SYNC_JOB_STATUS_NEVER_RUN
    CAUGHT_UP = s.SYNC_JOB_STATUS_CAUGHT_UP
    IDLE = s.SYNC_JOB_STATUS_IDLE
    BEHIND = s.SYNC_JOB_STATUS_BEHIND
    STUCK = s.SYNC_JOB_STATUS_STUCK


@dataclass(frozen=True)
class Progress:
    """What a job's row says about its runs."""

    created_at: datetime
    complete_until: datetime | None
    completed_once: bool  # some run completed (SUCCEEDED or PARTIAL)
    source_exhausted: bool
    last_fetched: int
    last_progress: bool
    consecutive_failures: int
    last_error: str


def aware(at: datetime | None) -> datetime | None:
    """A stored time as UTC-aware (SQLite hands back naive UTC)."""
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def later(a: datetime | None, b: datetime) -> datetime:
    a = aware(a)
    return b if a is None or b > a else a


def lag(p: Progress, now: datetime) -> timedelta:
    """now - the time our copy is complete up to (the job's creation before any complete run)."""
    start = aware(p.complete_until) or aware(p.created_at)
    assert start is not None
    return max(timedelta(0), now - start)


def status(p: Progress) -> tuple[Status, str]:
    if p.consecutive_failures:
        runs = "run" if p.consecutive_failures == 1 else f"{p.consecutive_failures} runs in a row"
        return Status.STUCK, f"the last {runs} failed: {p.last_error}"[:500]
    if not p.completed_once:
        return Status.NEVER_RUN, "no run completed yet"
    if not p.source_exhausted and not p.last_progress:
        return Status.STUCK, "no progress: the source has more records but the cursor did not move"
    if not p.source_exhausted:
        return Status.BEHIND, "the source has newer records; the next runs continue"
    if p.last_fetched == 0:
        return Status.IDLE, "the source is idle: nothing newer than the cursor"
    return Status.CAUGHT_UP, "caught up with the source"


class AlertMove(Enum):
    NONE = "none"
    OPEN = "open"
    KEEP = "keep"  # still lagging: the open alert's max lag may grow
    RESOLVE = "resolve"


def alert_move(current_lag: timedelta, threshold: timedelta, alert_open: bool) -> AlertMove:
    if current_lag > threshold:
        return AlertMove.KEEP if alert_open else AlertMove.OPEN
    return AlertMove.RESOLVE if alert_open else AlertMove.NONE


def threshold_of(seconds: int) -> timedelta:
    return timedelta(seconds=seconds) if seconds > 0 else DEFAULT_THRESHOLD


@dataclass(frozen=True)
class RecordVerdict:
    """created / updated / unchanged, by the change time we hold for the record."""

    outcome: str  # "created" | "updated" | "unchanged"


def compare(held: datetime | None, known: bool, incoming: datetime | None) -> RecordVerdict:
    if not known:
        return RecordVerdict("created")
    if incoming is not None and (held is None or incoming > held):
        return RecordVerdict("updated")
    return RecordVerdict("unchanged")
