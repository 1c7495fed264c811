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

# Platform defaults (NotifySettings may override them per tenant): SLA reminders and
# breaches are critical (a deadline does not wait for quiet hours); priority is NORMAL
# except for breaches (HIGH).
POLICIES: dict[str, CategoryPolicy] = {
    p.key: p
    for p in (
        CategoryPolicy("sla_reminder", True, NORMAL, _HOUR),
        CategoryPolicy("sla_breach", True, HIGH, _HOUR),
        CategoryPolicy("lead_assigned", False, NORMAL, _HOUR),
        CategoryPolicy("approval_waiting", False, NORMAL, _HOUR),
        CategoryPolicy("approval_decided", False, NORMAL, _HOUR),
        CategoryPolicy("dwell_alert", False, NORMAL, timedelta(hours=24)),
        CategoryPolicy("frozen_deal", False, NORMAL, timedelta(hours=24)),
        CategoryPolicy("feedback_due", False, NORMAL, timedelta(hours=24)),
        CategoryPolicy("anomaly", False, NORMAL, _HOUR),
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


def is_critical(category: str, priority: int, overrides: dict[str, bool] | None = None) -> bool:
    """Critical categories (tenant override first) and CRITICAL priority bypass quiet hours and rate limits."""
    if priority >= CRITICAL:
        return True
    if overrides is not None and category in overrides:
        return overrides[category]
    return policy(category).critical
