"""Stream entries as a consumer sees them: the entry with its delivery count, how to read
XREADGROUP's reply, consumer names, and which failures are the infrastructure's."""

from __future__ import annotations

import itertools
import os
import socket
from dataclasses import dataclass
from typing import Any

from redis import exceptions as redis_errors
from sqlalchemy import exc as sa_errors

from kit.events.dead_letters import fields_of, text_of


def is_transient(exc: BaseException) -> bool:
    """Infrastructure trouble that says nothing about the event: retry, never dead-letter."""
    if isinstance(exc, sa_errors.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        sa_errors.OperationalError
        | sa_errors.InterfaceError
        | sa_errors.TimeoutError
        | redis_errors.ConnectionError
        | redis_errors.TimeoutError
        | ConnectionError
        | TimeoutError,
    )


@dataclass(frozen=True)
class Delivery:
    """One stream entry handed to this consumer, with the stream's delivery count."""

    stream: str
    entry_id: str
    fields: dict[str, bytes]
    deliveries: int

    @property
    def event_id(self) -> str:
        return text_of(self.fields.get("id"))

    @property
    def event_type(self) -> str:
        return text_of(self.fields.get("type"))


def stream_entries(response: Any) -> list[tuple[str, list[tuple[str, dict[str, bytes]]]]]:
    """XREADGROUP's reply (RESP2 list or RESP3 dict) as [(stream, [(id, fields)])]."""
    if not response:
        return []
    pairs = response.items() if isinstance(response, dict) else response
    out: list[tuple[str, list[tuple[str, dict[str, bytes]]]]] = []
    for name, entries in pairs:
        out.append((text_of(name), [(text_of(eid), fields_of(f)) for eid, f in entries]))
    return out


_instances = itertools.count()


def default_consumer_name() -> str:
    """`<host>-<pid>-<n>`: stable across a container restart (same host, pid 1), unique in a process."""
    return f"{socket.gethostname()}-{os.getpid()}-{next(_instances)}"
