"""The deal change history: which tracked fields a write changed, from what, to what.

Tracked: stage, amount, probability, forecast category, expected close date and
owner (what forecasts, flows and "as of date D" answers are made of). Values are
text so one append-only table holds them all: money "<minor units> <currency>",
dates ISO "YYYY-MM-DD", enums by value name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

STAGE = "stage"
AMOUNT = "amount"
PROBABILITY = "probability"
CATEGORY = "forecast_category"
CLOSE_DATE = "expected_close_date"
OWNER = "owner"
STATUS = "status"
TRACKED: tuple[str, ...] = (STAGE, AMOUNT, PROBABILITY, CATEGORY, CLOSE_DATE, OWNER, STATUS)


@dataclass(frozen=True)
class Change:
    field: str
    before: str  # "" when the deal was created by this write
    after: str


def changes(before: Mapping[str, str] | None, after: Mapping[str, str]) -> list[Change]:
    """Tracked fields that differ, in TRACKED order; every tracked field on creation (before None)."""
    old = before or {}
    return [
        Change(name, old.get(name, ""), after.get(name, ""))
        for name in TRACKED
        if before is None or old.get(name, "") != after.get(name, "")
    ]


def as_of(history: Sequence[tuple[str, str]], field: str) -> str:
    """The value of `field` after the given (field, value) changes in time order ("" if never set)."""
    value = ""
    for name, to in history:
        if name == field:
            value = to
    return value


def money_text(amount_minor: int, currency: str) -> str:
    return f"{amount_minor} {currency}"


__all__ = [
    "AMOUNT",
    "CATEGORY",
    "CLOSE_DATE",
    "OWNER",
    "PROBABILITY",
    "STAGE",
    "STATUS",
    "TRACKED",
    "Change",
    "as_of",
    "changes",
    "money_text",
]
