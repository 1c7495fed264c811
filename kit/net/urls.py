"""Strict parsing of outbound URLs: one reading of the host that every layer agrees on.

Browsers and resolvers accept many spellings of an address (`2130706433`, `0x7f.1`,
`017700000001`, `127.0.0.1@example.com`); a check that reads the URL differently from
the resolver is a bypass. So only canonical forms pass: a dotted-quad IPv4, a bracketed
IPv6 without zone, or an LDH host name with a non-numeric top-level label.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from kit.errors import InvalidArgument
from kit.net.addresses import check_address
from kit.net.policy import IPAddress, OutboundPolicy

MAX_URL = 2048
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Names that never mean a public service (RFC 6761/6762/8375 and the usual cloud-internal zones).
_LOCAL_NAMES = ("localhost", "localdomain", "local", "internal", "home.arpa", "lan", "intranet")


class Blocked(httpx.RequestError):
    """An outbound destination refused by policy. `reason` is ours, safe to show to the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # ASCII, lower case, no brackets, no trailing dot
    port: int
    literal: IPAddress | None  # the host when it is an IP address
    trusted: bool = False  # the policy lists this host:port explicitly


def parse_target(url: str, policy: OutboundPolicy) -> Target:
    """The destination of `url`, or Blocked with the reason. Plain http only for listed hosts."""
    if len(url) > MAX_URL:
        raise Blocked(f"longer than {MAX_URL} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ch == "\\" for ch in url):
        raise Blocked("contains spaces, control characters or backslashes")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Blocked("only https URLs are allowed")
    if "@" in parts.netloc:
        raise Blocked("user names and passwords in the URL are not allowed")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise Blocked("the port is not a number between 1 and 65535")
    port = port or (443 if scheme == "https" else 80)
    raw = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    if not raw:
        raise Blocked("the URL has no host")
    target = host_target(raw, port, policy, scheme=scheme)
    if scheme == "http" and not target.trusted:
        raise Blocked("only https URLs are allowed (plain http only for hosts on the allow list)")
    # httpx must read the same host out of the URL, or the check is not the one that connects.
    try:
        seen = httpx.URL(url)
    except httpx.InvalidURL:
        raise Blocked("not a valid URL") from None
    if seen.raw_host.decode("ascii").lower().rstrip(".") != target.host or (seen.port or port) != port:
        raise Blocked("the URL's host is ambiguous")
    return target


def host_target(raw_host: str, port: int, policy: OutboundPolicy, *, scheme: str) -> Target:
    """A host (name, dotted quad or [IPv6]) and port checked without DNS: literals and local names."""
    host, literal = _host(raw_host)
    trusted = policy.allows_host(host, port)
    if literal is not None:
        why = check_address(literal, port, policy, trusted=trusted)
        if why:
            raise Blocked(why)
    elif not trusted and (host == "localhost" or host.endswith(tuple(f".{n}" for n in _LOCAL_NAMES))):
        raise Blocked(f"{host} is a local name")
    return Target(scheme, host, port, literal, trusted)


def validate_url(url: str, policy: OutboundPolicy, *, field: str = "url") -> None:
    """The save-time check (no DNS): INVALID_ARGUMENT on `field` with the reason."""
    try:
        parse_target(url, policy)
    except Blocked as exc:
        raise InvalidArgument.field(field, f"not an allowed destination: {exc.reason}") from None


def _host(raw: str) -> tuple[str, IPAddress | None]:
    if raw.startswith("["):
        inner = raw[1:-1] if raw.endswith("]") else ""
        if "%" in inner:
            raise Blocked("IPv6 zone identifiers are not allowed")
        try:
            return inner.lower(), ipaddress.IPv6Address(inner)
        except ValueError:
            raise Blocked("not a valid IPv6 address") from None
    host = raw.lower().rstrip(".")
    if "%" in host:
        raise Blocked("percent-encoded host names are not allowed")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise Blocked("not a valid host name") from None
    labels = host.split(".")
    if all(label.isdigit() for label in labels) and len(labels) == 4:
        try:  # rejects leading zeros (octal readings) and out-of-range parts
            return host, ipaddress.IPv4Address(host)
        except ValueError:
            raise Blocked("not a canonical IPv4 address") from None
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise Blocked("not a valid host name")
    if labels[-1].isdigit() or labels[-1].startswith("0x") or (len(labels) < 2 and host != "localhost"):
        # 2130706433, 0x7f.1, 127.1, intranet names without a domain
        raise Blocked("not a canonical IPv4 address or a fully qualified host name")
    return host, None
