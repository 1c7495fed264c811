"""kit.resources' text matches on a real database (SQLite, and PostgreSQL when configured): literal
text, and case-sensitive means case-sensitive on SQLite too (its LIKE ignores ASCII case)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, MetaData, String, Table, bindparam, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kit.resources import CaseSensitiveMatch, contains, glob_pattern, like_pattern, starts_with

metadata = MetaData()
names = Table("match_names", metadata, Column("name", String(64), primary_key=True))
NAMES = [
    "east",
    "east/nj",
    "East/NJ",
    "EAST/ny",
    "eastern",
    "a*b/x",
    "axb/x",
    "a?c/x",
    "a[1]/x",
    "100%",
    "a_b",
]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
        await conn.execute(insert(names), [{"name": n} for n in NAMES])
    try:
        yield engine
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
        await engine.dispose()


async def _where(engine: AsyncEngine, condition: object, **params: str) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(names.c.name).where(condition).order_by(names.c.name), params)  # type: ignore[arg-type]
        return sorted(r[0] for r in rows)


async def test_case_sensitive_prefix_and_substring_match_case_exactly(engine: AsyncEngine) -> None:
    assert await _where(engine, starts_with(names.c.name, "east/", case_sensitive=True)) == ["east/nj"]
    assert await _where(engine, starts_with(names.c.name, "East/", case_sensitive=True)) == ["East/NJ"]
    assert await _where(engine, contains(names.c.name, "/N", case_sensitive=True)) == ["East/NJ"]
    # Not case-sensitive: every case.
    assert await _where(engine, starts_with(names.c.name, "east/")) == ["EAST/ny", "East/NJ", "east/nj"]


async def test_wildcards_of_both_pattern_languages_are_literal(engine: AsyncEngine) -> None:
    for text, expected in [("a*b", ["a*b/x"]), ("a?c", ["a?c/x"]), ("a[1]", ["a[1]/x"]), ("100%", ["100%"])]:
        assert await _where(engine, starts_with(names.c.name, text, case_sensitive=True)) == expected
        assert await _where(engine, contains(names.c.name, text, case_sensitive=True)) == expected
    assert await _where(engine, contains(names.c.name, "_", case_sensitive=True)) == ["a_b"]


async def test_a_statement_built_once_binds_its_patterns_per_call(engine: AsyncEngine) -> None:
    below = CaseSensitiveMatch(names.c.name, bindparam("below"), bindparam("glob"))
    team = or_(names.c.name == bindparam("team"), below)

    def bound(prefix: str) -> dict[str, str]:
        return {"team": prefix, "below": like_pattern(prefix + "/"), "glob": glob_pattern(prefix + "/")}

    assert await _where(engine, team, **bound("east")) == ["east", "east/nj"]
    assert await _where(engine, team, **bound("EAST")) == ["EAST/ny"]
