"""kit.redis_client: more commands at once than the pool has connections wait, none fails.

redis-py 8's default pool fails the 101st concurrent command (MaxConnectionsError); a gateway at
more than 100 requests in flight or notify with hundreds of inbox streams did so."""

from __future__ import annotations

import asyncio

import pytest

from kit import redis_client
from kit.config import ConfigError


async def _blocked_at_once(url: str, count: int, hold: float) -> list[object]:
    client = redis_client.connect(url, socket_timeout=30)
    try:
        # BLPOP on an empty list holds its connection for `hold` seconds: all `count` at once.
        return await asyncio.gather(*(client.blpop([f"empty-{i}"], timeout=hold) for i in range(count)))
    finally:
        await client.aclose()


async def test_more_commands_than_redis_pys_default_pool_all_answer(redis_url: str) -> None:
    assert await _blocked_at_once(redis_url, 150, 1) == [None] * 150


async def test_commands_past_the_pool_wait_for_a_connection(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALESOPS_REDIS_MAX_CONNECTIONS", "4")
    assert await _blocked_at_once(redis_url, 20, 0.1) == [None] * 20


@pytest.mark.parametrize("raw", ["0", "-3", "many"])
def test_a_bad_pool_size_is_a_configuration_error(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESOPS_REDIS_MAX_CONNECTIONS", raw)
    with pytest.raises(ConfigError, match="SALESOPS_REDIS_MAX_CONNECTIONS"):
        redis_client.connect("redis://127.0.0.1:6379/0")
