"""PostgreSQL test databases created as copies of a template migrated once per service.

Running a service's migrations into each test's database cost about as much as creating it.
A test whose fixtures migrate its database to one service's head first thing (`SERVICE_FIXTURES`
in tests/conftest.py) gets instead `CREATE DATABASE <name> TEMPLATE <template>`, the template
being migrated by the same code once per process; the fixture's own `upgrade_to_head` then finds
nothing to do. Every other test (the migration tests among them) gets an empty database and
migrates for real.

Templates are per process (xdist worker) and per version of the service's migration code (a hash
of its files), dropped at the end of the session; a template of the same name left by a killed run
is dropped before being built again. Only databases created here are ever dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import weakref
from typing import Any

from sqlalchemy.engine import make_url

import kit.migrations
from kit.db import Database

_templates: dict[str, str] = {}  # service -> its template database, built in this process
_built: set[str] = set()  # every template this process created, dropped at the end
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
_admin_url = ""
ENABLED = os.environ.get("SALESOPS_TEST_PG_TEMPLATES", "1") != "0"


async def connect(url: str) -> Any:
    import asyncpg

    u = make_url(url)
    return await asyncpg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username or "postgres",
        password=u.password,
        database=u.database or "postgres",
    )


def _template_name(service: str) -> str:
    digest = hashlib.sha256()
    for path in sorted(kit.migrations.script_location(service).rglob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(kit.migrations.ROOT.joinpath("kit", "migrations.py").read_bytes())
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"salesops_tmpl_{service}_{digest.hexdigest()[:10]}_{worker}_{os.getpid()}"


async def template(admin_url: str, service: str) -> str:
    """This process's template of `service` on the server of `admin_url`, migrated to head
    (built on first use)."""
    global _admin_url
    _admin_url = admin_url
    loop = asyncio.get_running_loop()
    lock = _locks.setdefault(loop, asyncio.Lock())
    async with lock:
        if service in _templates:
            return _templates[service]
        name = _template_name(service)
        admin = await connect(_admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # a killed run's
            _built.add(name)
            await admin.execute(f'CREATE DATABASE "{name}"')
            await admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit TO off')
        finally:
            await admin.close()
        url = make_url(_admin_url).set(database=name, drivername="postgresql+asyncpg")
        db = Database(url.render_as_string(hide_password=False), pool_size=1)
        try:
            await kit.migrations.upgrade_to_head(service, db)
        finally:
            await db.dispose()
        admin = await connect(_admin_url)
        try:  # nothing connects to it again (a copy needs it without sessions)
            await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        finally:
            await admin.close()
        _templates[service] = name
        return name


async def drop_templates() -> None:
    """Drop the templates this process built (best effort)."""
    if not _built:
        return
    admin = await connect(_admin_url)
    try:
        for name in sorted(_built):
            with contextlib.suppress(Exception):  # best effort at session end
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    _templates.clear()
    _built.clear()
