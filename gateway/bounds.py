"""What one request may cost the gateway before a service sees it (OWASP API4).

Checked in this order, each answered with a JSON `google.rpc.Status`:
- the head while it arrives (`BoundedHttpToolsProtocol`: a head larger than the bound
  is cut off with 431 before it is buffered whole, uvicorn's httptools keeps any size;
  a head not complete within its time, or a connection that sends nothing, gets 408);
- headers (count, bytes: 431), query string (bytes: 414, parameters: 400) in
  `BoundsMiddleware`, the same limits for the path of each offline-batch item;
- the body (size: 413, time: 408, in `Gateway.read_body`) and its JSON nesting depth (400) before
  Python's recursive `json` parser runs, so deep JSON is a 400 and never a RecursionError.

The client address for the per-address limit of unauthenticated requests is the TCP
peer, or the `X-Forwarded-For` hop a configured proxy names (`client_address`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

import grpc
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway import errors as gw_errors
from gateway.coalesce import CoalescingTransport
from kit import errors
from kit.config import ConfigError, env_float, env_int, env_str

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class RequestBounds:
    max_json_depth: int = 64
    max_query_bytes: int = 16 * 1024
    max_query_params: int = 256
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    # Open Server-Sent Event streams per user and gateway process.
    max_streams_per_user: int = 5
    # From connection (or the first byte of a request) to the end of its head (0 = no limit).
    head_timeout_seconds: float = 10.0
    # From the end of the head to the end of the body (0 = no limit).
    body_timeout_seconds: float = 30.0
    # Requests failing authentication, per client address and rate-limit window (0 = off).
    address_limit: int = 600  # as many as one user may make: floods and guessing, not colleagues
    # Peers whose X-Forwarded-For is believed (CIDRs); nobody's by default.
    trusted_proxies: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> RequestBounds:
        proxies = env_str("SALESOPS_GATEWAY_TRUSTED_PROXIES", "")
        bounds = cls(
            max_json_depth=env_int("SALESOPS_GATEWAY_MAX_JSON_DEPTH", 64),
            max_query_bytes=env_int("SALESOPS_GATEWAY_MAX_QUERY_BYTES", 16 * 1024),
            max_query_params=env_int("SALESOPS_GATEWAY_MAX_QUERY_PARAMS", 256),
            max_header_bytes=env_int("SALESOPS_GATEWAY_MAX_HEADER_BYTES", 32 * 1024),
            max_headers=env_int("SALESOPS_GATEWAY_MAX_HEADERS", 100),
            max_streams_per_user=env_int("SALESOPS_GATEWAY_MAX_STREAMS_PER_USER", 5),
            head_timeout_seconds=env_float("SALESOPS_GATEWAY_HEAD_TIMEOUT_SECONDS", 10.0),
            body_timeout_seconds=env_float("SALESOPS_GATEWAY_BODY_TIMEOUT_SECONDS", 30.0),
            address_limit=env_int("SALESOPS_GATEWAY_RATE_ADDRESS", 600),
            trusted_proxies=tuple(p.strip() for p in proxies.split(",") if p.strip()),
        )
        try:
            bounds.networks()
        except ValueError as exc:
            raise ConfigError(f"SALESOPS_GATEWAY_TRUSTED_PROXIES: {exc}") from exc
        return bounds

    def networks(self) -> tuple[Network, ...]:
        return _networks(self.trusted_proxies)


@cache
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


# ---------------------------------------------------------------------- JSON


# A JSON string (escapes included); possessive, so an unterminated one costs one scan.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)


def too_deep(raw: bytes, limit: int) -> bool:
    """Whether arrays/objects nest deeper than `limit` (cheap when there are few brackets)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for b in _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        if b in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def parse_json(raw: bytes, max_depth: int) -> Any:
    """json.loads, with every way it can fail as INVALID_ARGUMENT (never a 500)."""
    if too_deep(raw, max_depth):
        raise errors.InvalidArgument.field("", f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise errors.InvalidArgument.field("", f"malformed JSON: {exc}") from exc
    except (ValueError, RecursionError) as exc:  # e.g. integers beyond int_max_str_digits
        raise errors.InvalidArgument.field("", f"unreadable JSON: {str(exc)[:200]}") from exc


# ---------------------------------------------------------------------- query and headers


def query_problem(query: bytes | str, bounds: RequestBounds) -> tuple[int, str] | None:
    """(HTTP status, message) when a query string is over its bounds."""
    if len(query) > bounds.max_query_bytes:
        return 414, f"query string longer than {bounds.max_query_bytes} bytes"
    sep = b"&" if isinstance(query, bytes) else "&"
    if query and query.count(sep) + 1 > bounds.max_query_params:  # type: ignore[arg-type]
        return 400, f"more than {bounds.max_query_params} query parameters"
    return None


def status_body(http: int, message: str) -> bytes:
    if http == 400:
        return gw_errors.from_error(errors.InvalidArgument.field("", message))[1]
    code = grpc.StatusCode.DEADLINE_EXCEEDED if http == 408 else grpc.StatusCode.INVALID_ARGUMENT
    return gw_errors.simple(code, message)[1]


class BoundsMiddleware:
    """Refuses requests whose headers or query string are over their bounds, before routing."""

    def __init__(self, app: ASGIApp, bounds: RequestBounds) -> None:
        self.app = app
        self.bounds = bounds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = self._problem(scope)
            if problem is not None:
                status, message = problem
                body = status_body(status, message)
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _problem(self, scope: Scope) -> tuple[int, str] | None:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if len(headers) > self.bounds.max_headers:
            return 431, f"more than {self.bounds.max_headers} request headers"
        if sum(len(k) + len(v) + 4 for k, v in headers) > self.bounds.max_header_bytes:
            return 431, f"request headers larger than {self.bounds.max_header_bytes} bytes"
        return query_problem(scope.get("query_string", b""), self.bounds)


@cache
def _protocol_bounds() -> RequestBounds:
    return RequestBounds.from_env()


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounds on the request head while it arrives.

    - size: httptools buffers a header of any size; counting the bytes received while the
      head is incomplete refuses it with 431 (within one read of the bound) instead.
      `BoundsMiddleware` still checks the exact size of heads that arrive in one piece.
    - time: a connection that sends nothing, or a head slowly (slowloris), is answered 408
      and closed once `head_timeout_seconds` pass; uvicorn only times out idle keep-alives.
    - writes: a response's head and body leave in one write (gateway.coalesce).
    """

    head_timeout: float | None = None  # seconds; None: from the environment (tests set it)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False
        self._head_bytes = 0
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Every write of this connection (answers, refusals) goes through it, in order.
        self.transport = cast(asyncio.Transport, CoalescingTransport(transport, self.loop))
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._in_head:
            self._head_bytes += len(data)
            limit = _protocol_bounds().max_header_bytes
            if self._head_bytes > limit + 4096:  # slack for the request line
                self._refuse(
                    431, "Request Header Fields Too Large", f"request head larger than {limit} bytes"
                )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0
        if self._head_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        super().on_headers_complete()

    def _arm(self) -> None:
        self._disarm()
        timeout = self.head_timeout or _protocol_bounds().head_timeout_seconds
        if timeout > 0:
            self._head_timer = self.loop.call_later(timeout, self._head_too_slow, timeout)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self, timeout: float) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered: its own head arrived in time
        self._refuse(408, "Request Timeout", f"request head not received within {timeout:g} s")

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._refused = True
        self._disarm()
        body = status_body(status, message)
        head = (
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode()
        self.transport.write(head + body)
        # Half-close and drop what still arrives, so the client reads the answer (a close with
        # unread input would reset the connection); the connection goes a little later.
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(5.0, self.transport.close)
        else:
            self.transport.close()


# ---------------------------------------------------------------------- client address


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The peer, or when the peer is a trusted proxy the right-most X-Forwarded-For hop
    that is not one (hops left of it are what the client itself claimed)."""
    current = peer or "unknown"
    if not trusted or not _is_trusted(current, trusted):
        return current
    hops = [h.strip() for line in forwarded_for for h in line.split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return current  # a proxy wrote nonsense: stay with the last hop we believe
        current = hop
        if not _is_trusted(hop, trusted):
            return hop
    return current


def address_bucket(address: str) -> str:
    """What a per-address limit counts: an IPv6 client holds a whole /64 (SLAAC, privacy
    addresses), so a limit per full address is one fresh address away; an IPv4-mapped
    address is the IPv4 client it names."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)
