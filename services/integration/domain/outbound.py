"""Outbound webhook rules: the retry schedule, what an attempt's answer means, which events match.

Pure: numbers, times and strings in, decisions out. The schedule is Standard
Webhooks' (and Svix's): attempts immediately, then after 5 s, 5 min, 30 min, 2 h,
5 h, 10 h, 14 h, 20 h and 24 h; each wait +/- 10 % jitter so a partner's outage
does not end in a thundering herd, and never shorter than the partner's
Retry-After (capped at a day). 410 Gone means "stop": the subscription is
suspended. Failing with no success for 5 days suspends it too (Svix's rule).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

SCHEDULE: tuple[timedelta, ...] = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
MAX_ATTEMPTS = len(SCHEDULE)
JITTER = 0.10
MAX_RETRY_AFTER = timedelta(hours=24)
SUSPEND_AFTER = timedelta(days=5)
EXCERPT_LIMIT = 1024
DEFAULT_TIMEOUT = timedelta(seconds=10)
MAX_TIMEOUT = timedelta(seconds=30)
DEFAULT_OVERLAP = timedelta(hours=24)
MAX_OVERLAP = timedelta(days=7)
# Headers a subscription may not set: ours, the signature's, and credentials.
RESERVED_HEADERS = ("authorization", "cookie", "host", "content-length", "content-type", "user-agent")
RESERVED_PREFIXES = ("x-salesops-", "webhook-")


class Outcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    wait: timedelta = timedelta(0)  # RETRY: until the next attempt
    suspend: str = ""  # why the subscription is suspended now ("" = it is not)


def wait_before(attempt: int, rng: random.Random | None = None) -> timedelta:
    """The scheduled wait before attempt `attempt` (1-based; the first is immediate), jittered."""
    base = SCHEDULE[min(attempt, MAX_ATTEMPTS) - 1]
    if not base:
        return base
    factor = 1 + (rng or random).uniform(-JITTER, JITTER)
    return base * factor


def retry_after(value: str, now: datetime) -> timedelta | None:
    """A Retry-After header (delay-seconds or an HTTP date) as a wait, capped at a day; None when absent or bad."""
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        wait = timedelta(seconds=int(text))
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        wait = max(when - now, timedelta(0))
    return min(wait, MAX_RETRY_AFTER)


def succeeded(status: int) -> bool:
    """A 2xx answer delivers, whatever else is true of the delivery or its subscription."""
    return 200 <= status < 300


def decide(
    *,
    attempt: int,
    max_attempts: int,
    status: int,
    after: timedelta | None,
    failing_since: datetime | None,
    now: datetime,
    rng: random.Random | None = None,
) -> Decision:
    """What attempt `attempt` (1-based) answering `status` (0 = no answer) means for the delivery."""
    if succeeded(status):
        return Decision(Outcome.SUCCEEDED)
    if status == 410:
        return Decision(Outcome.DEAD_LETTERED, suspend="the endpoint answered 410 Gone")
    since = failing_since or now
    if now - since >= SUSPEND_AFTER:
        return Decision(Outcome.DEAD_LETTERED, suspend="no delivery succeeded for 5 days")
    if attempt >= min(max_attempts or MAX_ATTEMPTS, MAX_ATTEMPTS):
        return Decision(Outcome.DEAD_LETTERED)
    wait = wait_before(attempt + 1, rng)
    if after is not None and after > wait:
        wait = after
    return Decision(Outcome.RETRY, wait=wait)


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """`pipeline.DealWon` matches itself, `pipeline.*` and `*`."""
    service = event_type.split(".", 1)[0]
    return any(p == event_type or p == "*" or p == f"{service}.*" for p in patterns)


def type_problems(patterns: Sequence[str]) -> list[str]:
    """Why a list of event type patterns is not acceptable (empty list = fine)."""
    problems = []
    if not patterns:
        problems.append("at least one event type (e.g. pipeline.DealWon or pipeline.*)")
    for p in patterns:
        service, _, name = p.partition(".")
        if p != "*" and not (service.isalnum() and service.islower() and (name == "*" or name.isalnum())):
            problems.append(f"{p!r} is not <service>.<EventName>, <service>.* or *")
    if len(set(patterns)) != len(patterns):
        problems.append("listed twice")
    return problems


def header_problems(headers: dict[str, str]) -> list[str]:
    problems = []
    for name, value in headers.items():
        low = name.lower()
        if not name or not all(c.isalnum() or c in "-_" for c in name):
            problems.append(f"{name!r} is not a header name")
        elif low in RESERVED_HEADERS or low.startswith(RESERVED_PREFIXES):
            problems.append(f"{name} is set by the platform")
        if any(ord(c) < 0x20 or ord(c) > 0x7E for c in value) or len(value) > 1000:
            problems.append(f"{name}: printable ASCII, at most 1000 characters")
    if len(headers) > 20:
        problems.append("at most 20 headers")
    return problems


def excerpt(body: bytes) -> str:
    """The first KiB of an answer as text, for the attempt log."""
    return body[:EXCERPT_LIMIT].decode("utf-8", "replace")


def aware(at: datetime | None) -> datetime | None:
    """A stored time as aware UTC (SQLite hands back naive datetimes)."""
    if at is None or at.tzinfo is not None:
        return at
    return at.replace(tzinfo=UTC)
