"""Page tokens and day-count filters: checked on the way in (a forged or wild value is a 400, never a 500)."""

from __future__ import annotations

import base64

from kit.errors import InvalidArgument


def page(token: str, size: int) -> tuple[int, int]:
    """(offset, page size) from a request's page_token and page_size (default 50, max 500)."""
    size = 50 if size <= 0 else min(size, 500)
    if not token:
        return 0, size
    try:
        offset = int(base64.urlsafe_b64decode(token.encode()).decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument.field("page_token", "not a token from a previous response") from exc
    if offset < 0:
        raise InvalidArgument.field("page_token", "not a token from a previous response")
    return offset, size


def token(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


MAX_DAYS = 3660  # ten years: any idle or age filter beyond this is a typo, not a question


def days(value: int, field: str) -> int:
    """A day-count filter, checked so a wild value is a 400 rather than a date overflow."""
    if not 0 <= value <= MAX_DAYS:
        raise InvalidArgument.field(field, f"must be between 0 and {MAX_DAYS} days")
    return value
