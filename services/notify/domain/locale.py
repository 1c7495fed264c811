"""Locale and time-zone choices (pure): the same rule for tenant defaults and user preferences."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kit.errors import Violations
from services.notify.domain.templates import LOCALES


def check(v: Violations, *, locale: str, locale_field: str, zone: str, zone_field: str) -> None:
    """Adds a violation for a locale notify has no templates in, or a zone that is not IANA."""
    if locale and locale not in LOCALES:
        v.add(locale_field, f"one of {', '.join(LOCALES)}")
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            v.add(zone_field, "not an IANA time zone")
