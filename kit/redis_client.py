"""The Redis client every process makes: a pool that waits for a free connection under a burst.

redis-py 8 caps a client's default pool at 100 connections and fails the 101st command at once
(`MaxConnectionsError`); a gateway with more requests in flight than that (each checks its rate
limits in Redis) or notify with hundreds of open inbox streams answered errors. A blocking pool
makes the extra commands wait their turn instead (up to `wait` seconds, then ConnectionError,
which callers treat as Redis being unavailable).
"""

from __future__ import annotations

from typing import Any

from redis import asyncio as aioredis

from kit.config import ConfigError, env_int

# Per process; a Redis server takes 10,000 clients by default, shared by every replica.
MAX_CONNECTIONS = 256
WAIT_SECONDS = 10.0


def connect(url: str, **options: Any) -> aioredis.Redis:
    """A client of `url` (connections are made on first use); `options` go to each connection."""
    size = env_int("SALESOPS_REDIS_MAX_CONNECTIONS", MAX_CONNECTIONS)
    if size < 1:
        raise ConfigError(f"SALESOPS_REDIS_MAX_CONNECTIONS must be at least 1, got {size}")
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=size, timeout=WAIT_SECONDS, **options
    )
    return aioredis.Redis(connection_pool=pool)
