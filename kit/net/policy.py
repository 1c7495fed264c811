"""Which outbound destinations are allowed: the production default is "public https only".

Exceptions are explicit configuration (`SALESOPS_OUTBOUND_ALLOW`, empty by default):
a comma-separated list of networks (`127.0.0.1/32`, `10.1.2.0/24`), addresses (`127.0.0.1`,
`::1`), either with a port (`127.0.0.1:8025`, `[::1]:8443`), or exact host names
(`fake.test`, `fake.test:8443`). A destination matching an entry may use an otherwise
refused address, plain http and any port. There is no switch that turns the check off:
networks wider than /8 (IPv4) or /32 (IPv6) are refused, and cloud metadata addresses stay
refused whatever the list says.

`SALESOPS_OUTBOUND_ALLOW_LOOPBACK=1` is the embedded-mode (`make run`, local testing)
setting that lets every loopback address (127.0.0.0/8, ::1) through, so demo partners
and fakes on this machine can be reached. With `SALESOPS_ENV=production` it is refused
(PolicyError), as is any loopback entry in `SALESOPS_OUTBOUND_ALLOW`: a production
process never calls itself by way of a configured partner.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_VAR = "SALESOPS_OUTBOUND_ALLOW"
LOOPBACK_VAR = "SALESOPS_OUTBOUND_ALLOW_LOOPBACK"
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
SMTP_PORTS: frozenset[int] = frozenset({25, 465, 587, 2525})


class PolicyError(ValueError):
    """The allow list is malformed or too wide; the message names the entry."""


@dataclass(frozen=True)
class AllowRule:
    """One exception: a network or an exact host name, optionally one port only."""

    network: IPNetwork | None = None
    host: str = ""
    port: int | None = None

    def matches_address(self, address: IPAddress, port: int) -> bool:
        return self.network is not None and address in self.network and self._port_ok(port)

    def matches_host(self, host: str, port: int) -> bool:
        if self.network is not None:
            try:
                return ipaddress.ip_address(host) in self.network and self._port_ok(port)
            except ValueError:
                return False
        return host == self.host and self._port_ok(port)

    def _port_ok(self, port: int) -> bool:
        return self.port is None or self.port == port


@dataclass(frozen=True)
class OutboundPolicy:
    """Passed explicitly to every outbound call; `OutboundPolicy()` is the strict production one."""

    allow: tuple[AllowRule, ...] = ()
    smtp_ports: frozenset[int] = field(default=SMTP_PORTS)

    @classmethod
    def parse(cls, spec: str) -> OutboundPolicy:
        """`OutboundPolicy.parse("127.0.0.1, [::1]:8443")`: the syntax of SALESOPS_OUTBOUND_ALLOW."""
        return cls(allow=tuple(_rule(item.strip()) for item in spec.split(",") if item.strip()))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OutboundPolicy:
        env = os.environ if environ is None else environ
        try:
            policy = cls.parse(env.get(ALLOW_VAR, ""))
        except PolicyError as exc:
            raise PolicyError(f"{ALLOW_VAR}: {exc}") from None
        production = env.get("SALESOPS_ENV", "embedded").strip() == "production"
        loopback = env.get(LOOPBACK_VAR, "").strip().lower() in ("1", "true", "yes", "on")
        if production and loopback:
            raise PolicyError(
                f"{LOOPBACK_VAR} is for embedded mode only; refused with SALESOPS_ENV=production"
            )
        if production and any(_is_loopback(rule) for rule in policy.allow):
            raise PolicyError(f"{ALLOW_VAR}: loopback destinations are refused with SALESOPS_ENV=production")
        if loopback:
            extra = tuple(AllowRule(network=n) for n in _LOOPBACK)
            return cls(allow=policy.allow + extra, smtp_ports=policy.smtp_ports)
        return policy

    def allows_address(self, address: IPAddress, port: int) -> bool:
        return any(rule.matches_address(address, port) for rule in self.allow)

    def allows_host(self, host: str, port: int) -> bool:
        """The URL's host itself is listed: plain http and refused addresses are allowed for it."""
        return any(rule.matches_host(host, port) for rule in self.allow)


def _is_loopback(rule: AllowRule) -> bool:
    if rule.network is not None:
        return (
            rule.network.overlaps(_LOOPBACK[0])
            if rule.network.version == 4
            else rule.network.overlaps(_LOOPBACK[1])
        )
    return rule.host in ("localhost", "localhost.localdomain") or rule.host.endswith(".localhost")


def _rule(item: str) -> AllowRule:
    host, port = _split_port(item)
    if "/" in host:
        try:
            network = ipaddress.ip_network(host, strict=False)
        except ValueError:
            raise PolicyError(f"{item!r} is not a network") from None
        if network.prefixlen < (8 if network.version == 4 else 32):
            raise PolicyError(f"{item!r} is too wide to be an exception (at most /8 or /32 for IPv6)")
        return AllowRule(network=network, port=port)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not host or not all(part.isalnum() or part == "-" for part in host.replace(".", " ").split()):
            raise PolicyError(f"{item!r} is neither an address, a network nor a host name") from None
        return AllowRule(host=host.lower().rstrip("."), port=port)
    return AllowRule(network=ipaddress.ip_network(address), port=port)


def _split_port(item: str) -> tuple[str, int | None]:
    if item.startswith("["):  # [v6]:port or [v6]
        end = item.find("]")
        if end < 0:
            raise PolicyError(f"{item!r}: unclosed '['")
        rest = item[end + 1 :]
        return item[1:end], _port(item, rest[1:]) if rest.startswith(":") else None
    if item.count(":") == 1:  # host:port or v4:port (a bare v6 has several colons)
        host, raw = item.split(":")
        return host, _port(item, raw)
    return item, None


def _port(item: str, raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise PolicyError(f"{item!r}: bad port")
    return int(raw)
