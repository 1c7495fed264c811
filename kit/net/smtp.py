"""SMTP connections under the same rules as HTTP: checked host and port, resolved once, pinned.

smtplib resolves the host itself when it connects; these subclasses connect to the
checked address instead, while TLS (implicit or STARTTLS) still verifies the certificate
against the configured host name (smtplib uses `self._host` as server_hostname).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass

from kit.net.policy import OutboundPolicy
from kit.net.resolve import Resolver, pin
from kit.net.urls import Blocked, host_target


@dataclass(frozen=True)
class SmtpDestination:
    host: str  # for the greeting checks and TLS
    port: int
    address: str  # where the socket goes
    listed: bool = False  # on the policy's allow list (e.g. a relay on the private network)


async def smtp_destination(
    host: str, port: int, policy: OutboundPolicy, resolver: Resolver | None = None
) -> SmtpDestination:
    """Check host and port (25, 465, 587, 2525 or an allow-list entry), resolve once. Raises Blocked."""
    raw = f"[{host}]" if ":" in host and not host.startswith("[") else host
    target = host_target(raw, port, policy, scheme="smtp")
    address = await pin(target, policy, resolver)
    listed = target.trusted or policy.allows_address(address, port)
    if port not in policy.smtp_ports and not listed:
        raise Blocked(f"port {port} is not an SMTP submission port")
    return SmtpDestination(target.host, port, str(address), listed)


class _PinnedSMTP(smtplib.SMTP):
    def __init__(self, dest: SmtpDestination, timeout: float) -> None:
        self._address = dest.address
        super().__init__(dest.host, dest.port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self._address, port), timeout, self.source_address)


class _PinnedSMTPS(smtplib.SMTP_SSL):
    def __init__(self, dest: SmtpDestination, timeout: float, context: ssl.SSLContext) -> None:
        self._address, self._server_name = dest.address, dest.host
        super().__init__(dest.host, dest.port, timeout=timeout, context=context)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((self._address, port), timeout, self.source_address)
        return self.context.wrap_socket(sock, server_hostname=self._server_name)


def connect_smtp(
    dest: SmtpDestination,
    *,
    implicit_tls: bool,
    timeout: float = 15.0,
    context: ssl.SSLContext | None = None,
) -> smtplib.SMTP:
    """A connected (blocking) client for `dest`; run it in a thread. STARTTLS is the caller's step."""
    if implicit_tls:
        return _PinnedSMTPS(dest, timeout, context or ssl.create_default_context())
    return _PinnedSMTP(dest, timeout)
