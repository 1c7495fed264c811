"""One write per response: the response head waits for its body (gateway.bounds installs it).

uvicorn writes a response's head and its body with a `transport.write` each, and uvloop sends
each at once when nothing is queued: two syscalls and two TCP segments per answer, so the client
wakes twice. Measured with strace on the gateway under load: one `write` for the head and one for
the body of every response. `CoalescingTransport` holds a write until the next one arrives (both
then go out in one `writelines`, a single writev) or the event loop turns (a head whose body comes
later, a HEAD answer, a stream's last chunk), so nothing waits longer than the current loop step.
"""

from __future__ import annotations

import asyncio
from typing import Any


class CoalescingTransport:
    """A connection's transport as the HTTP protocol sees it, writes coalesced per loop step."""

    __slots__ = ("_held", "_loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            if data:
                self._held = data
                self._loop.call_soon(self.flush)
        else:
            self._held = None
            self.transport.writelines((held, data))

    def writelines(self, chunks: Any) -> None:
        self.flush()
        self.transport.writelines(chunks)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self.transport.is_closing():
                self.transport.write(held)

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()

    def close(self) -> None:
        self.flush()  # close() sends what is buffered, then closes
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        # Everything else (extra info, flow control, abort...) is the transport's own.
        return getattr(self.transport, name)


__all__ = ["CoalescingTransport"]
