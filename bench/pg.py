"""PostgreSQL for the benchmarks: each suite creates a database of its own on the admin URL
(SALESOPS_BENCH_POSTGRES_URL) and drops it after."""

from __future__ import annotations

from typing import Any


async def connect(url: str) -> Any:
    """An asyncpg connection to the database a SQLAlchemy URL names (postgres by default)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return await asyncpg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username or "postgres",
        password=u.password,
        database=u.database or "postgres",
    )


async def admin_sql(admin_url: str, sql: str) -> None:
    conn = await connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def pg_database(admin_url: str, name: str, *, drop: bool = False) -> None:
    """CREATE DATABASE `name`, or (drop) DROP it, its sessions ended."""
    await admin_sql(
        admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' if drop else f'CREATE DATABASE "{name}"'
    )
