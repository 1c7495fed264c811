"""Per-call state the interceptors set and handlers read: the caller and the deadline."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar

from kit.auth import Principal
from kit.errors import Unauthenticated

_principal: ContextVar[Principal | None] = ContextVar("salesops_principal", default=None)
_token: ContextVar[str] = ContextVar("salesops_token", default="")
_deadline: ContextVar[float | None] = ContextVar("salesops_deadline", default=None)


def principal() -> Principal:
    """The authenticated caller of the current RPC."""
    found = _principal.get()
    if found is None:
        raise Unauthenticated("no authenticated caller")
    return found


def maybe_principal() -> Principal | None:
    return _principal.get()


def bearer_token() -> str:
    """The caller's raw token, forwarded on outbound calls made on its behalf."""
    return _token.get()


def time_remaining() -> float | None:
    """Seconds left before the current call's deadline (None outside a call)."""
    deadline = _deadline.get()
    if deadline is None:
        return None
    return max(0.0, deadline - asyncio.get_running_loop().time())


def set_call(principal_: Principal | None, token: str, deadline: float | None) -> None:
    _principal.set(principal_)
    _token.set(token)
    _deadline.set(deadline)
