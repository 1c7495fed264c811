"""The one way out over HTTP: an httpx client whose transport checks and pins every connection.

`SafeTransport` parses each request's URL strictly, resolves the host once, refuses
non-public addresses (see kit.net.addresses) and makes httpcore connect to exactly
that address, while the Host header, TLS SNI and certificate check keep the host
name. Redirects are never followed; response bodies are capped. `request(...)` is the
helper adapters use: callers learn a status class (`Outcome`), never the answer text.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import json as jsonlib
import ssl
import typing
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from kit.net.policy import OutboundPolicy
from kit.net.resolve import Resolver, Unresolved, pin
from kit.net.urls import Blocked, parse_target

BODY_LIMIT = 64 * 1024
LIMITS = httpx.Limits(max_connections=50, max_keepalive_connections=10)
# (host, port) -> the checked address, for the connection being opened by this task's request.
_PINS: contextvars.ContextVar[Mapping[tuple[str, int], str]] = contextvars.ContextVar("kit_net_pins")


class Outcome(enum.StrEnum):
    """All a caller may learn about an outbound call."""

    OK = "2xx"
    REDIRECT = "3xx"
    CLIENT_ERROR = "4xx"
    SERVER_ERROR = "5xx"
    TIMEOUT = "timeout"
    REFUSED = "refused"  # no connection: refused, reset, TLS failure, unreadable answer
    BLOCKED = "blocked"  # the policy refused the destination; nothing was sent


def status_class(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.OK
    if 300 <= status < 400:
        return Outcome.REDIRECT
    if 400 <= status < 500:
        return Outcome.CLIENT_ERROR
    return Outcome.SERVER_ERROR


class OutboundError(Exception):
    """No answer: `outcome` is TIMEOUT, REFUSED or BLOCKED. `reason` is ours (never the target's)."""

    def __init__(self, outcome: Outcome, reason: str = "") -> None:
        super().__init__(f"{outcome}: {reason}" if reason else str(outcome))
        self.outcome = outcome
        self.reason = reason


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the address the transport checked, never to what the host name says now."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = _PINS.get({}).get((host.lower().rstrip("."), port))
        if address is None:  # fail closed: a connection nobody checked
            raise httpcore.ConnectError(f"no checked address for {host}:{port}")
        return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not outbound destinations")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _CappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, limit: int) -> None:
        self._inner, self._limit = inner, limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self._inner:
            part = chunk[: self._limit - seen]
            seen += len(part)
            if part:
                yield part
            if seen >= self._limit:
                break  # the rest is never read; the connection is dropped, not reused

    async def aclose(self) -> None:
        await self._inner.aclose()


class SafeTransport(httpx.AsyncHTTPTransport):
    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        resolver: Resolver | None = None,
        verify: ssl.SSLContext | bool | str = True,
        limits: httpx.Limits = LIMITS,
        body_limit: int = BODY_LIMIT,
        resolve_timeout: float = 5.0,
    ) -> None:
        context = httpx.create_ssl_context(verify=verify, trust_env=False)
        super().__init__(verify=context, trust_env=False, limits=limits)
        self.policy, self.resolver = policy, resolver
        self.body_limit, self.resolve_timeout = body_limit, resolve_timeout
        # httpx takes no network backend; the pool it built is replaced by one that can only pin.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PinnedBackend(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = parse_target(str(request.url), self.policy)
        address = await pin(target, self.policy, self.resolver, timeout=self.resolve_timeout)
        token = _PINS.set({**_PINS.get({}), (target.host, target.port): str(address)})
        try:
            response = await super().handle_async_request(request)
        finally:
            _PINS.reset(token)
        stream = typing.cast(httpx.AsyncByteStream, response.stream)
        # We ask for `identity`. An encoded answer is passed on as its raw bytes, never inflated:
        # the cap counts wire bytes, and 64 KB of gzip inflates to 64 MB in one decode step.
        headers = [(k, v) for k, v in response.headers.raw if k.lower() != b"content-encoding"]
        return httpx.Response(
            response.status_code,
            headers=headers,
            stream=_CappedStream(stream, self.body_limit),
            extensions=response.extensions,
        )


class SafeClient(httpx.AsyncClient):
    """An AsyncClient that can only go out through SafeTransport: no proxies from the environment,
    no redirects, no other mounts."""

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        resolver: Resolver | None = None,
        timeout: float = 10.0,
        verify: ssl.SSLContext | bool | str = True,
        body_limit: int = BODY_LIMIT,
    ) -> None:
        super().__init__(
            transport=SafeTransport(policy, resolver=resolver, verify=verify, body_limit=body_limit),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=False,
            trust_env=False,
            headers={"Accept-Encoding": "identity", "User-Agent": "salesops-outbound"},
        )
        self.policy = policy
        self.resolver = resolver
        self.body_limit = body_limit


@dataclass(frozen=True)
class Answer:
    """What came back: the status and at most `body_limit` bytes, for parsing only, never to echo."""

    status: int
    body: bytes

    @property
    def outcome(self) -> Outcome:
        return status_class(self.status)

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return jsonlib.loads(self.body)


async def request(
    client: SafeClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    data: Mapping[str, str] | None = None,
    json: Any = None,
    timeout: float = 10.0,
) -> Answer:
    """One outbound call, bounded in time as a whole. OutboundError when there is no answer."""
    if not isinstance(client, SafeClient):  # an ordinary client would skip every check
        raise TypeError("outbound calls go through kit.net.SafeClient")
    try:
        async with asyncio.timeout(timeout):
            async with client.stream(
                method, url, headers=headers, content=content, data=data, json=json, timeout=timeout
            ) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():  # never decoded: see SafeTransport
                    body += chunk[: client.body_limit - len(body)]
                    if len(body) >= client.body_limit:
                        break
    except Unresolved as exc:  # DNS may be back later: a transient failure, not a refusal
        raise OutboundError(Outcome.REFUSED, exc.reason) from None
    except Blocked as exc:
        raise OutboundError(Outcome.BLOCKED, exc.reason) from None
    except (TimeoutError, httpx.TimeoutException):
        raise OutboundError(Outcome.TIMEOUT) from None
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError):
        # ValueError: a request httpx cannot even build (e.g. a non-ASCII header value).
        raise OutboundError(Outcome.REFUSED) from None
    return Answer(response.status_code, bytes(body))
