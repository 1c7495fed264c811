"""SMTP connections under the same rules as HTTP: checked host and port, resolved once, pinned.

smtplib resolves the host itself when it connects; these subclasses connect to the
checked address instead, while TLS (implicit or STARTTLS) still verifies the certificate
against the configured host name (smtplib uses `self._host` as server_hostname).

smtplib's own timeout is per read, and it keeps every line of a multi-line reply: a
server dripping a byte at a time, or sending `220-` lines forever, held a worker thread
(and its memory) without end. Each conversation now has a deadline, after which the
connection is shut down, and each reply a size limit.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

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


DEADLINE = 60.0  # seconds for a whole conversation, connect to QUIT
REPLY_LIMIT = 64 * 1024  # bytes of one reply; a long EHLO answer is about 1 KB


class SmtpTimeout(Exception):
    """The conversation outlived its deadline. Not an OSError: smtplib would report a disconnect."""


class _Guard:
    """Shuts the connection down at the deadline, whatever read or write is blocked on it."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.fired = False
        self._watch: socket.socket | None = None
        self._timer: threading.Timer | None = None

    def arm(self, sock: socket.socket) -> None:
        # Shutting down a duplicate descriptor we own ends the shared connection, with no race
        # against smtplib closing (and the OS reusing) the original one.
        self._watch = socket.socket(fileno=os.dup(sock.fileno()))
        self._timer = threading.Timer(max(0.0, self.deadline - time.monotonic()), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.fired = True
        if self._watch is not None:
            with contextlib.suppress(OSError):
                self._watch.shutdown(socket.SHUT_RDWR)

    @property
    def expired(self) -> bool:
        return self.fired or time.monotonic() >= self.deadline

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._watch is not None:
            self._watch.close()
            self._watch = None


class _Replies:
    """The reader smtplib takes replies from: REPLY_LIMIT bytes per reply, nothing past the deadline."""

    def __init__(self, raw: Any, guard: _Guard) -> None:
        self.raw, self.guard, self.seen = raw, guard, 0

    def readline(self, size: int = -1) -> bytes:
        try:
            line: bytes = self.raw.readline(size)
        except OSError:
            if self.guard.expired:
                raise SmtpTimeout from None
            raise
        if self.guard.expired:
            raise SmtpTimeout
        self.seen += len(line)
        if self.seen > REPLY_LIMIT:
            raise OSError("SMTP reply over the size limit")  # smtplib closes: a disconnect
        return line

    def close(self) -> None:
        self.raw.close()


class _Bounded(smtplib.SMTP):
    """A deadline per conversation and a size limit per reply (see the module doc)."""

    _guard: _Guard

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None and self.sock is not None:
            self.file = _Replies(self.sock.makefile("rb"), self._guard)
        elif isinstance(self.file, _Replies):
            self.file.seen = 0
        return super().getreply()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._guard.disarm()


class _PinnedSMTP(_Bounded):
    def __init__(self, dest: SmtpDestination, timeout: float, deadline: float) -> None:
        self._address, self._guard = dest.address, _Guard(deadline)
        try:
            super().__init__(dest.host, dest.port, timeout=timeout)
        except BaseException:
            self.close()  # a banner that failed or timed out leaves no socket behind
            raise

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((self._address, port), timeout, self.source_address)
        self._guard.arm(sock)
        return sock


class _PinnedSMTPS(smtplib.SMTP_SSL, _Bounded):
    def __init__(
        self, dest: SmtpDestination, timeout: float, deadline: float, context: ssl.SSLContext
    ) -> None:
        self._address, self._server_name, self._guard = dest.address, dest.host, _Guard(deadline)
        try:
            super().__init__(dest.host, dest.port, timeout=timeout, context=context)
        except BaseException:
            self.close()
            raise

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((self._address, port), timeout, self.source_address)
        self._guard.arm(sock)  # before the handshake: a dripped handshake is bounded too
        return self.context.wrap_socket(sock, server_hostname=self._server_name)


def connect_smtp(
    dest: SmtpDestination,
    *,
    implicit_tls: bool,
    timeout: float = 15.0,
    deadline: float = DEADLINE,
    context: ssl.SSLContext | None = None,
) -> smtplib.SMTP:
    """A connected (blocking) client for `dest`; run it in a thread. STARTTLS is the caller's step.

    `timeout` bounds each read or write, `deadline` the whole conversation (SmtpTimeout after it).
    """
    if implicit_tls:
        return _PinnedSMTPS(dest, min(timeout, deadline), deadline, context or ssl.create_default_context())
    return _PinnedSMTP(dest, min(timeout, deadline), deadline)
