"""Live inbox fan-out: Redis pub/sub per tenant and user, one subscriber connection per process.

Publishers send serialized StreamInboxResponse messages to
`salesops:notify:inbox:<len(tenant)>:<tenant>:<user>`. Each API process holds a single
pattern subscription and hands messages to the in-process queues of the open
StreamInbox calls, so 500 open streams cost one Redis connection, not 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import redis.asyncio as aioredis

from salesops.notify.v1 import notify_service_pb2

log = logging.getLogger("salesops.notify.live")

PREFIX = "salesops:notify:inbox:"
# Who has a stream open, per tenant: a sorted set of "<user>\x00<stream id>" scored by expiry,
# so a fan-out to 10,000 recipients publishes only to the few who are watching.
ONLINE = "salesops:notify:online:"  # + tenant: one key per tenant, no collision possible
PRESENCE_TTL = 60.0
PRESENCE_REFRESH = 20.0


def channel_name(tenant: str, user_id: str) -> str:
    # Length-prefixed: tenant "a:b" with user "c" must not share a channel with tenant "a", user "b:c".
    return f"{PREFIX}{len(tenant)}:{tenant}:{user_id}"


async def publish(
    redis: aioredis.Redis, events: Iterable[tuple[str, str, notify_service_pb2.StreamInboxResponse]]
) -> None:
    """Publish (tenant, user, event) triples in one round trip."""
    pipe = redis.pipeline(transaction=False)
    count = 0
    for tenant, user, event in events:
        pipe.publish(channel_name(tenant, user), event.SerializeToString())
        count += 1
    if count:
        await pipe.execute()


async def online_users(redis: aioredis.Redis, tenant: str) -> set[str]:
    now = time.time()
    members = await redis.zrangebyscore(ONLINE + tenant, now, "+inf")
    # Plain members (no scores asked): bytes, or str on a decode_responses client.
    return {str(m.decode() if isinstance(m, bytes) else m).split("\x00", 1)[0] for m in members}


class InboxHub:
    """Routes published inbox events to the open streams of this process."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._queues: dict[str, set[asyncio.Queue[bytes]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def _run(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(PREFIX + "*")
                self._ready.set()
                while True:
                    msg = await pubsub.get_message(timeout=5.0)
                    if msg is None:
                        continue
                    channel = msg["channel"].decode() if isinstance(msg["channel"], bytes) else msg["channel"]
                    for queue in list(self._queues.get(channel, ())):
                        queue.put_nowait(msg["data"])
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis went away: resubscribe; streams replay from their cursor.
                log.warning("inbox hub lost its Redis subscription; retrying", exc_info=True)
                self._ready.clear()
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="notify-inbox-hub")
        await asyncio.wait_for(self._ready.wait(), 10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @asynccontextmanager
    async def listen(self, tenant: str, user_id: str) -> AsyncIterator[asyncio.Queue[bytes]]:
        """A queue receiving the user's events while the block runs (subscribed before it starts)."""
        await self.start()
        key = channel_name(tenant, user_id)
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._queues[key].add(queue)
        member = f"{user_id}\x00{uuid.uuid4().hex}"
        presence = ONLINE + tenant

        async def refresh() -> None:
            while True:
                await self.redis.zadd(presence, {member: time.time() + PRESENCE_TTL})
                # Entries of streams that died without saying goodbye expire here.
                await self.redis.zremrangebyscore(presence, "-inf", time.time())
                await asyncio.sleep(PRESENCE_REFRESH)

        await self.redis.zadd(presence, {member: time.time() + PRESENCE_TTL})
        keeper = asyncio.create_task(refresh())
        try:
            yield queue
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await keeper
            with contextlib.suppress(Exception):
                await self.redis.zrem(presence, member)
            self._queues[key].discard(queue)
            if not self._queues[key]:
                del self._queues[key]
