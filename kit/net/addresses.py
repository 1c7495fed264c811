"""Which IP addresses an outbound connection may reach: public unicast only.

`ipaddress`'s `is_global` differs between Python versions and misses some forms
(192.0.0.0/24, NAT64, 6to4), so the refused ranges are also listed here, and
addresses that embed an IPv4 address are judged by that IPv4 address.
"""

from __future__ import annotations

import ipaddress

from kit.net.policy import IPAddress, OutboundPolicy

# Never reachable, whatever the allow list says: instance credentials live there.
METADATA: frozenset[IPAddress] = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)

_V4_REFUSED = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
)
_V6_REFUSED = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/96",  # unspecified, loopback, deprecated IPv4-compatible
        "64:ff9b:1::/48",  # local-use NAT64: the IPv4 side is anyone's guess
        "100::/64",  # discard
        "2001::/32",  # Teredo: tunnels to an obfuscated IPv4 address
        "2001:db8::/32",
        "3fff::/20",
        "fc00::/7",  # unique local (includes fd00:ec2::254)
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def refusal(address: IPAddress) -> str:
    """Why `address` may not be reached, or "" when it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_v4(address)
        if embedded is not None:
            why = refusal(embedded)
            return f"{why} (embedded in {address})" if why else ""
        if any(address in net for net in _V6_REFUSED):
            return f"{address} is not a public address"
    elif any(address in net for net in _V4_REFUSED):
        return f"{address} is not a public address"
    if (
        not address.is_global
        or address.is_multicast
        or address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_reserved
        or address.is_unspecified
    ):
        return f"{address} is not a public address"
    return ""


def is_metadata(address: IPAddress) -> bool:
    plain = _embedded_v4(address) if isinstance(address, ipaddress.IPv6Address) else None
    return address in METADATA or plain in METADATA


def check_address(
    address: IPAddress | str, port: int, policy: OutboundPolicy, *, trusted: bool = False
) -> str:
    """ "" when a connection to address:port is allowed, else why not.

    `trusted`: the host name itself is on the policy's allow list, so any address it
    resolves to is accepted, except cloud metadata.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if is_metadata(ip):
        return f"{ip} is a cloud metadata address"
    plain = _embedded_v4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    if trusted or policy.allows_address(plain or ip, port) or policy.allows_address(ip, port):
        return ""
    return refusal(ip)


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form stands for: ::ffff:a.b.c.d, 64:ff9b::a.b.c.d, 2002:AABB:CCDD::."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour
