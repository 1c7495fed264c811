"""The SLA bench's way from a reminder to the owner's inbox, laid out as the services run it.

The leads outbox relay runs in the bench's process, beside the leads worker, as the leads service
runs both in its process. notify's consumer runs in a process of its own (`python -m
bench.sla_inbox REDIS_URL NOTIFY_DB_URL`), as the notify service is one: run in the bench's process
it competed with the watch worker for one interpreter, which no deployment does. Its database is
notify's own, migrated by the bench before the consumer starts; the bench reads its inbox rows.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from deploy.local.supervisor import die_with_parent

ROOT = Path(__file__).resolve().parent.parent
READY = "consumer ready"


class InboxPath:
    """The leads outbox relay here, notify's consumer in its own process; `db` is notify's database."""

    def __init__(self, leads_db: Any, redis_url: str, notify_url: str) -> None:
        from redis.asyncio import Redis

        from kit.db import Database

        self.leads_db = leads_db
        self.redis_url, self.notify_url = redis_url, notify_url
        self.redis = Redis.from_url(redis_url)
        self.db = Database(notify_url, pool_size=4)
        self.relay: Any = None
        self.task: asyncio.Task[None] | None = None
        self.proc: subprocess.Popen[str] | None = None

    async def start(self) -> None:
        from kit.events import OutboxRelay, service_stream
        from kit.migrations import upgrade_to_head
        from services.leads import events as leads_events
        from services.leads.store import outbox

        await upgrade_to_head("notify", self.db)
        self.proc = _spawn(self.redis_url, self.notify_url)
        # The consumer has made its group on the stream once it says so: nothing published after is missed.
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), 120)  # type: ignore[union-attr]
        if line.strip() != READY:
            raise RuntimeError(f"notify's consumer did not start (exit {self.proc.poll()})")
        stream = service_stream(leads_events.SOURCE)
        self.relay = OutboxRelay(self.leads_db, self.redis, stream, table=outbox)
        self.task = asyncio.create_task(self.relay.run())

    @property
    def pid(self) -> int:
        """notify's consumer process (0 before start)."""
        return self.proc.pid if self.proc is not None else 0

    async def stop(self) -> None:
        if self.relay is not None:
            await self.relay.stop()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        await self.redis.aclose()
        await self.db.dispose()


def _spawn(redis_url: str, notify_url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.sla_inbox", redis_url, notify_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent(),
    )


async def consume(redis_url: str, notify_url: str) -> None:
    """notify's consumer as the notify service builds it (consumers.CONSUMER), until SIGTERM."""
    from redis.asyncio import Redis

    from kit.db import Database
    from kit.events import StreamConsumer, service_stream
    from kit.heap import tune_gc
    from services.leads import events as leads_events
    from services.notify import consumers as notify_consumers
    from services.notify import sending
    from services.notify import store as notify_store

    redis = Redis.from_url(redis_url)
    db = Database(notify_url, pool_size=10)
    handler = notify_consumers.EventNotifier(sending.Sender(db, redis))
    spec = notify_consumers.CONSUMER
    consumer = StreamConsumer(
        redis,
        db,
        spec.group,
        [service_stream(leads_events.SOURCE)],
        handler,
        types=spec.types,
        processed_table=notify_store.processed_events,
        before_ack=handler.before_ack,
        **spec.options,
    )
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    task = asyncio.create_task(consumer.run())
    # The group exists once the consumer has read (or blocked reading) the stream once.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not task.done():
        try:
            if await redis.xinfo_groups(service_stream(leads_events.SOURCE)):
                break
        except Exception:  # the stream is made with the group: not there yet
            pass
        await asyncio.sleep(0.05)
    else:
        if task.done():
            await task  # its error, and a non-zero exit the bench reports
        raise RuntimeError("notify's consumer made no group on the stream within 60 s")
    tune_gc()  # as kit.runtime does once a service is serving
    print(READY, flush=True)
    stop = asyncio.create_task(stopping.wait())
    await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    await consumer.stop()
    await asyncio.gather(task, return_exceptions=True)
    stop.cancel()
    await redis.aclose()
    await db.dispose()


if __name__ == "__main__":
    asyncio.run(consume(sys.argv[1], sys.argv[2]))
