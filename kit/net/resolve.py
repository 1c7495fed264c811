"""Resolve a destination once, check every address, and pin the connection to the first one.

Resolving again at connect time would let a name answer a public address to the check
and a private one to the connection (DNS rebinding); callers connect to `pin(...)`'s answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence

from kit.errors import InvalidArgument
from kit.net.addresses import check_address
from kit.net.policy import IPAddress, OutboundPolicy
from kit.net.urls import Blocked, Target, parse_target


class Unresolved(Blocked):
    """The name gave no address (now): nothing to check yet, nothing to connect to."""


Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """getaddrinfo in the loop's executor (never on the event loop), addresses in the system's order."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    seen: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]
        if address not in seen:
            seen.append(address)
    return seen


async def pin(
    target: Target,
    policy: OutboundPolicy,
    resolver: Resolver | None = None,
    *,
    timeout: float = 5.0,
) -> IPAddress:
    """The one address to connect to; Blocked when the name does not resolve or any answer is refused."""
    if target.literal is not None:
        why = check_address(target.literal, target.port, policy, trusted=target.trusted)
        if why:
            raise Blocked(why)
        return target.literal
    try:
        async with asyncio.timeout(timeout):
            answers = await (resolver or system_resolver)(target.host, target.port)
    except (OSError, TimeoutError, UnicodeError):
        raise Unresolved(f"{target.host} does not resolve") from None
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            addresses.append(ipaddress.ip_address(answer))
        except ValueError:
            raise Blocked(f"{target.host} does not resolve to an IP address") from None
    if not addresses:
        raise Unresolved(f"{target.host} does not resolve")
    for address in addresses:
        # Any refused answer refuses the name: which one a client would pick is not ours to guess.
        # The reason leaves the address out: internal DNS answers are not the caller's business.
        if check_address(address, target.port, policy, trusted=target.trusted):
            raise Blocked(f"{target.host} resolves to an address that is not public")
    return addresses[0]


async def check_url(
    url: str, policy: OutboundPolicy, resolver: Resolver | None = None, *, field: str = "url"
) -> None:
    """The save-time check with DNS: `validate_url` plus every address the name has now.

    A name that does not resolve at the moment passes (each send checks again); one that
    resolves to a refused address is INVALID_ARGUMENT on `field`.
    """
    try:
        await pin(parse_target(url, policy), policy, resolver)
    except Unresolved:
        return
    except Blocked as exc:
        raise InvalidArgument.field(field, f"not an allowed destination: {exc.reason}") from None
