"""Input checks shared by several RPCs: client-made ids and day-count filters (a wild value is a 400)."""

from __future__ import annotations

import re
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from kit.errors import InvalidArgument

ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # client-made ids: leads, activities, imports, opportunities
MAX_MESSAGE_BYTES = 64 * 1024  # a lead or an activity as a client sends it: text, not documents
MAX_NOTE = 2000  # free-text notes and names on state changes
MAX_DAYS = 3660  # ten years: any idle or age filter beyond this is a typo, not a question


def days(value: int, field: str) -> int:
    """A day-count filter, checked so a wild value is a 400 rather than a date overflow."""
    if not 0 <= value <= MAX_DAYS:
        raise InvalidArgument.field(field, f"must be between 0 and {MAX_DAYS} days")
    return value


def bounded_text(value: str, field: str, limit: int = MAX_NOTE) -> str:
    if len(value) > limit:
        raise InvalidArgument.field(field, f"at most {limit} characters")
    return value


def known_enum(enum: Any, value: int) -> bool:
    """A value the contract names (a number from nowhere would be stored as UNKNOWN or fail later)."""
    return value in enum.values()


MAX_LIST = 500  # values in one repeated filter field: each is a bound parameter (PostgreSQL allows 32767)


def bounded_lists(msg: Message, prefix: str = "", limit: int = MAX_LIST) -> None:
    """Refuse a request whose repeated fields (at any depth of its set sub-messages) hold over `limit` values."""
    for field, value in msg.ListFields():
        path = f"{prefix}.{field.name}" if prefix else field.name
        if field.is_repeated:
            if len(value) > limit:
                raise InvalidArgument.field(path, f"at most {limit} values")
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            bounded_lists(value, path, limit)
