"""Partner key rules, pure: the secret's shape and checksum, scopes, expiry, rotation, state.

A secret is ``so_live_`` (production) or ``so_test_`` (anywhere else), 32 random base62
characters, then a 6-character base62 CRC32 of everything before it, as GitHub's tokens
(``ghp_`` + 30 + 6). The prefix makes a leaked secret recognisable by secret scanners;
the checksum lets anyone (`looks_like_secret`) tell a real secret from a look-alike
offline, and lets the exchange refuse typos and guesses without a database lookup.
32 base62 characters are ~190 bits: a plain SHA-256 of the secret is what is stored
(no slow KDF needed at that entropy), and the hash alone finds the key.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Final

LIVE_PREFIX: Final = "so_live_"
TEST_PREFIX: Final = "so_test_"
PREFIXES: Final = (LIVE_PREFIX, TEST_PREFIX)
RANDOM_CHARS: Final = 32
CHECKSUM_CHARS: Final = 6
SECRET_LENGTH: Final = len(LIVE_PREFIX) + RANDOM_CHARS + CHECKSUM_CHARS
HINT_CHARS: Final = 4
ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY = re.compile(rf"^so_(live|test)_[0-9A-Za-z]{{{RANDOM_CHARS + CHECKSUM_CHARS}}}$")

MAX_LIFETIME: Final = timedelta(days=731)  # 2 years, a leap day included
MIN_LIFETIME: Final = timedelta(hours=1)
DEFAULT_RATE: Final = 600
MAX_RATE: Final = 60_000
MAX_SCOPES: Final = 50
DEFAULT_TOKEN_TTL: Final = timedelta(minutes=15)
MAX_TOKEN_TTL: Final = timedelta(hours=1)
DEFAULT_GRACE: Final = timedelta(hours=24)
MAX_GRACE: Final = timedelta(days=7)
MAX_CIDRS: Final = 50

SERVICES: Final = ("leads", "pipeline", "knowledge", "notify", "integration")
GROUP_SCOPES: Final = frozenset({"integration.webhooks", "integration.stock", "integration.insights"})
_SCOPE = re.compile(r"^(leads|pipeline|knowledge|notify|integration)\.(read|write|[A-Z][A-Za-z0-9]{1,80})$")


class KeyState(IntEnum):
    """Mirrors PartnerKeyState numbers (the domain imports no stubs)."""

    ACTIVE = 1
    REVOKED = 2
    EXPIRED = 3


def base62(number: int, width: int) -> str:
    out = []
    while number:
        number, digit = divmod(number, 62)
        out.append(ALPHABET[digit])
    return "".join(reversed(out)).rjust(width, "0")


def checksum(body: str) -> str:
    """Base62 CRC32 of `body` (prefix and random part), 6 characters."""
    return base62(zlib.crc32(body.encode("ascii")), CHECKSUM_CHARS)


def new_secret(*, live: bool) -> str:
    body = (LIVE_PREFIX if live else TEST_PREFIX) + "".join(
        secrets.choice(ALPHABET) for _ in range(RANDOM_CHARS)
    )
    return body + checksum(body)


def looks_like_secret(text: str) -> bool:
    """True when `text` has a partner secret's shape and a matching checksum (offline, no lookup)."""
    if len(text) != SECRET_LENGTH or not _BODY.match(text):
        return False
    body, check = text[:-CHECKSUM_CHARS], text[-CHECKSUM_CHARS:]
    return secrets.compare_digest(checksum(body), check)


def find_secrets(text: str) -> list[str]:
    """Every valid partner secret in `text` (logs, a paste): what a secret scanner runs."""
    pattern = rf"so_(?:live|test)_[0-9A-Za-z]{{{RANDOM_CHARS + CHECKSUM_CHARS}}}(?![0-9A-Za-z])"
    return [found for found in re.findall(pattern, text) if looks_like_secret(found)]


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def hint(secret: str) -> str:
    """The public start shown to admins: the prefix and 4 random characters."""
    return secret[: len(LIVE_PREFIX) + HINT_CHARS]


def scope_problems(scopes: list[str]) -> list[str]:
    """Problems with a scope list: at least one, at most 50, each ``<service>.<read|write|Method>`` or a group."""
    if not scopes:
        return ["at least one scope is required"]
    if len(scopes) > MAX_SCOPES:
        return [f"at most {MAX_SCOPES} scopes"]
    bad = [s for s in scopes if s not in GROUP_SCOPES and not _SCOPE.match(s)]
    if bad:
        return [
            f"unknown scope {s[:90]!r}: use <service>.read, <service>.write, <service>.<Method> "
            f"(service one of {', '.join(SERVICES)}) or {', '.join(sorted(GROUP_SCOPES))}"
            for s in bad[:5]
        ]
    return []


def expiry_problem(expire_at: datetime | None, now: datetime) -> str | None:
    """Expiry is mandatory: at least an hour ahead, at most 2 years."""
    if expire_at is None:
        return "an expiry is required (at most 2 years ahead)"
    if expire_at < now + MIN_LIFETIME:
        return "must be at least 1 hour in the future"
    if expire_at > now + MAX_LIFETIME:
        return "must be at most 2 years in the future"
    return None


def rate_problem(rate: int) -> str | None:
    if rate < 0 or rate > MAX_RATE:
        return f"must be between 1 and {MAX_RATE} (0 = the default {DEFAULT_RATE})"
    return None


def cidr_problems(cidrs: list[str]) -> list[str]:
    if len(cidrs) > MAX_CIDRS:
        return [f"at most {MAX_CIDRS} ranges"]
    problems = []
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            problems.append(f"{cidr[:60]!r} is not an address range such as 203.0.113.0/24")
    return problems


def address_allowed(address: str, cidrs: list[str]) -> bool:
    """No ranges = any address; otherwise the caller's address must fall in one."""
    if not cidrs:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for cidr in cidrs:
        network = ipaddress.ip_network(cidr, strict=False)
        if ip.version == network.version and ip in network:
            return True
    return False


def grace_period(requested: timedelta | None) -> timedelta:
    """How long the previous secret keeps working: default 24 h, 0 = not at all, max 7 days."""
    if requested is None:
        return DEFAULT_GRACE
    if requested < timedelta(0) or requested > MAX_GRACE:
        raise ValueError("must be between 0 and 7 days")
    return requested


@dataclass(frozen=True)
class KeyFacts:
    revoked_at: datetime | None
    expire_at: datetime


def utc(at: datetime) -> datetime:
    """Stored times as aware UTC (SQLite hands them back naive)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def state_of(key: KeyFacts, now: datetime) -> KeyState:
    if key.revoked_at is not None:
        return KeyState.REVOKED
    if utc(key.expire_at) <= now:
        return KeyState.EXPIRED
    return KeyState.ACTIVE


def secret_usable(valid_until: datetime | None, now: datetime) -> bool:
    """A current secret has no end (the key's expiry governs); a previous one ends with its grace."""
    return valid_until is None or now < utc(valid_until)


def granted_scopes(key_scopes: list[str], requested: list[str]) -> list[str] | None:
    """The scopes a token gets: the requested subset, all of the key's when none requested; None if any is not granted."""
    if not requested:
        return sorted(set(key_scopes))
    if not set(requested) <= set(key_scopes):
        return None
    return sorted(set(requested))


def token_lifetime(ttl: timedelta, now: datetime, key_expires: datetime) -> timedelta:
    """A token never outlives its key."""
    return min(ttl, utc(key_expires) - now)


def last_used_due(last_used: datetime | None, now: datetime) -> bool:
    """Last-used is written at most once a minute: a busy partner would otherwise write per exchange."""
    return last_used is None or now - utc(last_used) >= timedelta(minutes=1)
