"""Update discipline and dwell as pure rules: weekly update deadlines in the tenant zone, dwell limits.

The weekly window of a deal ends at the tenant's due day and time (default Friday
18:00) in the tenant's IANA zone. A deal not updated within the window that just
closed (last update at or before the previous deadline) is frozen at the deadline.
Deadlines are local wall-clock times: across a DST change the week between two
deadlines is 167 or 169 hours, never a shifted 18:00.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ISO_DAYS = 7
# The team's own p90 is a limit only with this many finished stays of the team in the stage.
MIN_DWELL_SAMPLE = 10
P90 = 90  # percent


@dataclass(frozen=True)
class WeeklyDue:
    """Due weekday (Monday = 0), local time and zone of a tenant's weekly update."""

    weekday: int
    at: time
    zone: ZoneInfo

    def _local(self, day: date) -> datetime:
        # fold=0: an ambiguous local time takes its first occurrence; a skipped one moves forward.
        naive = datetime.combine(day, self.at)
        return naive.replace(tzinfo=self.zone).astimezone(UTC).astimezone(self.zone)

    def last_due(self, at: datetime) -> datetime:
        """The latest deadline at or before `at` (UTC)."""
        local = at.astimezone(self.zone)
        back = (local.weekday() - self.weekday) % ISO_DAYS
        due = self._local(local.date() - timedelta(days=back))
        if due > at:
            due = self._local(local.date() - timedelta(days=back + ISO_DAYS))
        return due.astimezone(UTC)

    def next_due(self, at: datetime) -> datetime:
        """The first deadline strictly after `at` (UTC)."""
        last = self.last_due(at).astimezone(self.zone)
        return self._local(last.date() + timedelta(days=ISO_DAYS)).astimezone(UTC)

    def previous(self, due: datetime) -> datetime:
        """The deadline one week before `due` (same local wall-clock time)."""
        local = due.astimezone(self.zone)
        return self._local(local.date() - timedelta(days=ISO_DAYS)).astimezone(UTC)


def overdue_before(due: WeeklyDue, at: datetime) -> datetime:
    """Deals last updated at or before this instant missed the window that closed last before `at`."""
    return due.previous(due.last_due(at))


def week_start(day: date) -> date:
    """Monday of the ISO week of `day` (process health is weekly, Monday to Sunday, tenant calendar)."""
    return day - timedelta(days=day.weekday())


FIXED_UNITS = {"MINUTES": 60, "HOURS": 3600, "CALENDAR_DAYS": 86400}
WORKING_UNITS = ("WORKING_HOURS", "WORKING_DAYS")


@dataclass(frozen=True)
class DwellLimit:
    """A stage's dwell limit: `value` units (the contract's TimeUnit names without prefix)."""

    value: int
    unit: str

    @property
    def fixed_seconds(self) -> int | None:
        """Wall-clock length; None for working units (those need the business calendar)."""
        per = FIXED_UNITS.get(self.unit)
        return None if per is None else self.value * per

    @property
    def lower_bound_seconds(self) -> int:
        """No deal can exceed the limit sooner than this (a working hour or day lasts at least as long)."""
        per = FIXED_UNITS.get(self.unit) or (3600 if self.unit == "WORKING_HOURS" else 86400)
        return self.value * per


def nearest_rank(percent: int, n: int) -> int:
    """The 1-based rank of the nearest-rank percentile among n values: ceil(percent * n / 100)."""
    return max(1, -(-percent * n // 100))


def percentile(sorted_values: Sequence[float], percent: int) -> float:
    """The nearest-rank percentile of ascending values (what the SQL side picks per team and stage)."""
    if not sorted_values:
        raise ValueError("no values")
    return float(sorted_values[nearest_rank(percent, len(sorted_values)) - 1])


def effective_limit(fixed_seconds: int | None, team_p90_seconds: int | None) -> tuple[int, str] | None:
    """The tighter of the stage's fixed limit and the team's p90 (either may be absent)."""
    options = [(s, src) for s, src in ((fixed_seconds, "STAGE"), (team_p90_seconds, "TEAM_P90")) if s]
    return min(options) if options else None


__all__ = [
    "MIN_DWELL_SAMPLE",
    "P90",
    "DwellLimit",
    "WeeklyDue",
    "effective_limit",
    "nearest_rank",
    "overdue_before",
    "percentile",
    "week_start",
]
