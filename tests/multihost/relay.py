"""The test process's way into the lab without touching the host's own network namespace.

A thread of the test process joins the lab's `client` namespace (setns works per thread) and runs
an event loop there. Sockets keep the namespace they were made in, whichever thread uses them:
the relays listen on 127.0.0.1 in the root namespace (made by the caller's thread) and dial their
target from the client namespace (made by the relay's thread). The root namespace gets no link,
address or route, so nothing on the machine sees a network change (Chromium fails requests in
flight on one: net::ERR_NETWORK_CHANGED).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def enter_namespace(ns: str) -> None:
    """Move the calling thread (only it) into the named network namespace (`ip netns add`)."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {ns}: {os.strerror(err)}")
    finally:
        os.close(fd)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


class Relays:
    """TCP relays from 127.0.0.1 (root namespace) to addresses as the client namespace reaches them."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._forwards: dict[tuple[str, int], int] = {}
        # The loop keeps only weak references to tasks: a relayed connection whose socket is not
        # waited on (its peer's side is) would be garbage collected, and its connection dropped.
        self._conns: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=f"relay-{ns}", daemon=True)
        self._thread.start()
        ready.wait(30)
        if self._error is not None:
            raise self._error

    def _run(self, ready: threading.Event) -> None:
        try:
            enter_namespace(self.ns)
        except OSError as exc:
            self._error = exc
            ready.set()
            return
        asyncio.set_event_loop(self._loop)
        ready.set()
        self._loop.run_forever()
        self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def reachable(self, address: str, port: int, timeout: float = 1.0) -> bool:
        """Whether a TCP connection from the client namespace to address:port is accepted."""

        async def probe() -> bool:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
            except (TimeoutError, OSError):
                return False
            writer.close()
            return True

        return self._call(probe(), timeout + 10)

    def forward(self, address: str, port: int) -> tuple[str, int]:
        """127.0.0.1 and a port in the root namespace whose connections reach address:port. A
        connection whose target refuses is accepted, then closed: probe targets with `reachable`."""
        key = (address, port)
        if key not in self._forwards:
            listener = socket.create_server(("127.0.0.1", 0))  # this thread: the root namespace

            async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
                task = asyncio.current_task()
                assert task is not None
                self._conns.add(task)
                task.add_done_callback(self._conns.discard)
                try:
                    target_r, target_w = await asyncio.open_connection(address, port)
                    try:
                        await asyncio.gather(_pipe(client_r, target_w), _pipe(target_r, client_w))
                    finally:
                        target_w.close()
                except (OSError, asyncio.CancelledError):
                    pass  # refused, or the relays close (3.11's stream server logs a cancelled task)
                finally:
                    client_w.close()

            async def serve() -> None:
                self._servers.append(await asyncio.start_server(handle, sock=listener))

            self._call(serve(), 30)
            self._forwards[key] = listener.getsockname()[1]
        return "127.0.0.1", self._forwards[key]

    def target(self, address: str, port: int) -> str:
        """`host:port` of the relay to address:port."""
        host, local = self.forward(address, port)
        return f"{host}:{local}"

    def close(self) -> None:
        """Stop listening, drop every relayed connection, end the thread (it leaves the namespace)."""
        if not self._thread.is_alive():
            return

        async def shutdown() -> None:
            for server in self._servers:
                server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self._call(shutdown(), 30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
