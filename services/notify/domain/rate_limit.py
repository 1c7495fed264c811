"""Per-recipient, per-channel rate limit: beyond the limit in a window, deliveries fold into a summary.

The inbox is never limited, and critical deliveries are never folded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_MAX = 5
DEFAULT_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class Limit:
    max_deliveries: int = DEFAULT_MAX  # 0 = unlimited
    window: timedelta = DEFAULT_WINDOW


def effective(tenant: Limit, requested_max: int, requested_window: timedelta | None) -> Limit:
    """A user's own limit may only be stricter than the tenant's, never looser."""
    maximum = tenant.max_deliveries
    if requested_max > 0:
        maximum = requested_max if maximum == 0 else min(maximum, requested_max)
    window = tenant.window
    if requested_window is not None and requested_window >= timedelta(minutes=1):
        window = max(window, requested_window)
    return Limit(maximum, window)


def must_fold(limit: Limit, in_window: int, *, critical: bool) -> bool:
    return not critical and limit.max_deliveries > 0 and in_window >= limit.max_deliveries


def summary_due(oldest_in_window: datetime, limit: Limit) -> datetime:
    """The folded deliveries go out as one summary when the window that filled up ends."""
    return oldest_in_window + limit.window


def summary_detail(counts: dict[str, int], locale: str) -> str:
    """ "4 x sla_reminder, 3 x dwell_alert", most frequent first."""
    parts = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    sep = "，" if locale == "zh-CN" else ", "  # noqa: RUF001 (Chinese list separator)
    return sep.join(f"{n} x {category}" for category, n in parts)
