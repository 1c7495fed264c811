"""Fixtures of the reliability tests: a database with the events world's tables, and a Redis client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from kit.db import Database
from tests.reliability.events_support import open_db


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await open_db(database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()
