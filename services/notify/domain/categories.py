"""Built-in policy of each notification category: criticality, priority, dedupe window.

Categories are named by their lower-case key (the built-in template key), e.g.
"sla_breach"; the API layer maps the proto enum to these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

LOW, NORMAL, HIGH, CRITICAL = 1, 2, 3, 4


@dataclass(frozen=True)
class CategoryPolicy:
    key: str
    critical: bool
    default_priority: int
    dedupe_window: timedelta


_HOUR = timedelta(hours=1)

POLICIES: dict[str, CategoryPolicy] = {
    p.key: p
    for p in (
        CategoryPolicy("sla_reminder", False, HIGH, _HOUR),
        # A breach must reach the person even at night: quiet hours do not hold it.
        CategoryPolicy("sla_breach", True, CRITICAL, _HOUR),
        CategoryPolicy("lead_assigned", False, NORMAL, _HOUR),
        CategoryPolicy("approval_waiting", False, HIGH, _HOUR),
        CategoryPolicy("approval_decided", False, NORMAL, _HOUR),
        CategoryPolicy("dwell_alert", False, NORMAL, timedelta(hours=24)),
        CategoryPolicy("frozen_deal", False, HIGH, timedelta(hours=24)),
        CategoryPolicy("feedback_due", False, NORMAL, timedelta(hours=24)),
        CategoryPolicy("anomaly", True, HIGH, _HOUR),
        CategoryPolicy("sync_lag", False, NORMAL, _HOUR),
        CategoryPolicy("digest", False, LOW, timedelta(hours=20)),
        CategoryPolicy("summary", False, NORMAL, timedelta(0)),
        CategoryPolicy("system", False, NORMAL, _HOUR),
    )
}


def policy(key: str) -> CategoryPolicy:
    try:
        return POLICIES[key]
    except KeyError:
        raise ValueError(f"unknown notification category {key!r}") from None


def is_critical(category: str, priority: int) -> bool:
    """Critical categories and CRITICAL priority bypass quiet hours and rate limits."""
    return priority >= CRITICAL or policy(category).critical
