"""Input checks shared by several RPCs: client-made ids and day-count filters (a wild value is a 400)."""

from __future__ import annotations

import re

from kit.errors import InvalidArgument

ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # client-made ids: leads, activities, imports, opportunities
MAX_DAYS = 3660  # ten years: any idle or age filter beyond this is a typo, not a question


def days(value: int, field: str) -> int:
    """A day-count filter, checked so a wild value is a 400 rather than a date overflow."""
    if not 0 <= value <= MAX_DAYS:
        raise InvalidArgument.field(field, f"must be between 0 and {MAX_DAYS} days")
    return value
