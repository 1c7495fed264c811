"""What runs on the test hosts: PostgreSQL, Redis and Temporal on the infra host, the leads and
notify APIs and workers on each app host, the gateway on its own host. Production mode
throughout: real secrets made per run, no migration on start (the test migrates once).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography.fernet import Fernet
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.local.infra import find_temporal
from tests.multihost import netns
from tests.multihost.netns import Lab, Proc

ROOT = Path(__file__).resolve().parents[2]
PG_PORT, REDIS_PORT, TEMPORAL_PORT, GATEWAY_PORT, METRICS_PORT = 5432, 6379, 7233, 8080, 9464
API_PORTS = {"leads": 50051, "notify": 50055}
APP_SERVICES = tuple(API_PORTS)
PG_USER = "postgres"  # PostgreSQL refuses to run as root
RUN_AS_PG = ("runuser", "-u", PG_USER, "--")
INITDB_OPTIONS = ("-A", "trust", "-E", "UTF8", "--no-sync")  # trust: a private network of the test's own


def postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL server binaries (initdb, postgres)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def missing_binaries() -> str | None:
    """Why the infra host cannot be built here, or None."""
    if postgres_bin() is None:
        return "needs PostgreSQL server binaries in /usr/lib/postgresql/*/bin"
    if shutil.which("runuser") is None:
        return "needs runuser (PostgreSQL runs as a non-root user)"
    try:
        import pwd

        pwd.getpwnam(PG_USER)
    except KeyError:
        return f"needs a {PG_USER!r} system user to run PostgreSQL"
    if shutil.which("redis-server") is None:
        return "needs redis-server"
    try:
        find_temporal()
    except RuntimeError as exc:
        return str(exc)
    return None


def require_hosts(*, infra: bool = True) -> None:
    """Skip, with the reason, where test hosts cannot be made; fail instead under
    SALESOPS_TEST_REQUIRE_NETNS=1 (CI), so a missing capability never passes silently."""
    reason = netns.unavailable() or (missing_binaries() if infra else None)
    if reason is None:
        return
    if os.environ.get("SALESOPS_TEST_REQUIRE_NETNS", "") == "1":
        pytest.fail(f"SALESOPS_TEST_REQUIRE_NETNS=1 but the multi-host tests cannot run: {reason}")
    pytest.skip(f"multi-host tests {reason}")


def until(what: str, probe: Callable[[], object], timeout: float, lab: Lab | None = None) -> object:
    """Poll `probe` until it returns something truthy; fail naming `what` (and a dead process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab is not None:
            lab.check_alive()
        found = probe()
        if found:
            return found
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def run(
    argv: list[str], *, timeout: float, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> None:
    """Run a setup command to completion; its output is in the failure."""
    done = subprocess.run(
        argv, env=None if env is None else dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:4])}... exited with {done.returncode}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )


def base_env() -> dict[str, str]:
    """The environment every process on the hosts shares: production mode with this run's secrets."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TZ")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        {
            "SALESOPS_ENV": "production",
            "SALESOPS_JWT_SECRET": secrets.token_urlsafe(48),
            "SALESOPS_SECRETS_KEY": Fernet.generate_key().decode(),
            "SALESOPS_PAGE_TOKEN_SECRET": secrets.token_urlsafe(32),
            "SALESOPS_MIGRATE_ON_START": "0",
            "SALESOPS_LOG_FORMAT": "text",
            "SALESOPS_LOG_LEVEL": "WARNING",
            "OTEL_TRACES_EXPORTER": "none",
            "GRPC_VERBOSITY": "ERROR",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


class Infra:
    """PostgreSQL (initdb + postgres as the postgres user), Redis and the Temporal dev server on one host."""

    def __init__(self, lab: Lab, host: str) -> None:
        self.lab = lab
        self.host = host
        self.address = lab.hosts[host].address
        self.pg_dir = lab.workdir / "pgdata"

    def database_url(self, name: str) -> str:
        return f"postgresql+asyncpg://{PG_USER}@{self.address}:{PG_PORT}/{name}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.address}:{REDIS_PORT}/0"

    @property
    def temporal_address(self) -> str:
        return f"{self.address}:{TEMPORAL_PORT}"

    def start(self, env: Mapping[str, str]) -> None:
        pg = postgres_bin()
        assert pg is not None
        os.chmod(self.lab.workdir, 0o755)  # the postgres user reaches its data directory through it
        self.pg_dir.mkdir(mode=0o700)
        shutil.chown(self.pg_dir, PG_USER, PG_USER)
        run(
            [*RUN_AS_PG, str(pg / "initdb"), "-D", str(self.pg_dir), "-U", PG_USER, *INITDB_OPTIONS],
            timeout=120,
        )
        with (self.pg_dir / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.lab.subnet} trust\n")
        settings: list[str] = []
        for setting in (
            f"listen_addresses={self.address}",
            f"unix_socket_directories={self.pg_dir}",
            "max_connections=300",
            # The infra host is never the one that fails here: its disk's durability is not under test.
            "fsync=off",
            "full_page_writes=off",
        ):
            settings += ["-c", setting]
        self.lab.spawn(
            self.host,
            "postgres",
            [*RUN_AS_PG, str(pg / "postgres"), "-D", str(self.pg_dir), "-p", str(PG_PORT), *settings],
            env,
        )
        self.lab.spawn(
            self.host,
            "redis",
            [
                *("redis-server", "--bind", self.address, "--port", str(REDIS_PORT)),
                *("--save", "", "--appendonly", "no", "--protected-mode", "no"),
            ],
            env,
        )
        self.lab.spawn(
            self.host,
            "temporal",
            # All of the host's addresses (its own namespace): the server's internal workers dial 127.0.0.1.
            [
                *(find_temporal(), "server", "start-dev", "--ip", "0.0.0.0", "--port", str(TEMPORAL_PORT)),
                *("--headless", "--log-level", "warn", "--namespace", "default"),
            ],
            {**env, "TEMPORAL_NO_UPDATE_CHECK": "1"},
        )
        for port in (PG_PORT, REDIS_PORT, TEMPORAL_PORT):
            until(f"{self.address}:{port}", lambda p=port: self.lab.reachable(self.address, p), 90, self.lab)  # type: ignore[misc]
        asyncio.run(self._create_databases())

    async def _create_databases(self) -> None:
        import asyncpg

        host, port = self.lab.relays.forward(self.address, PG_PORT)

        async def connect() -> asyncpg.Connection:
            deadline = time.monotonic() + 60
            while True:
                try:
                    return await asyncpg.connect(host=host, port=port, user=PG_USER, database="postgres")
                except (OSError, asyncpg.CannotConnectNowError):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)

        conn = await connect()
        try:
            for name in APP_SERVICES:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    def migrate(self, env: Mapping[str, str]) -> None:
        """Alembic to head, once per service, from the client namespace (production never migrates on start)."""
        for name in APP_SERVICES:
            argv = self.lab.run_in_client([sys.executable, "-m", "kit.migrations", name, "upgrade"])
            run(argv, env=env, cwd=ROOT, timeout=180)


def app_env(env: Mapping[str, str], infra: Infra) -> dict[str, str]:
    out = dict(env)
    out.update(
        {
            "SALESOPS_REDIS_URL": infra.redis_url,
            "SALESOPS_TEMPORAL_ADDRESS": infra.temporal_address,
            **{f"SALESOPS_{n.upper()}_DATABASE_URL": infra.database_url(n) for n in APP_SERVICES},
        }
    )
    return out


def start_app_host(lab: Lab, host: str, env: Mapping[str, str]) -> list[Proc]:
    """The leads and notify APIs and workers, each its own process, listening on the host's address."""
    address = lab.hosts[host].address
    host_env = dict(env)
    for name, port in API_PORTS.items():
        host_env[f"SALESOPS_{name.upper()}_LISTEN"] = f"{address}:{port}"
    procs = []
    for name in APP_SERVICES:
        for role in ("api", "worker"):
            argv = [sys.executable, "-m", f"services.{name}", "--role", role]
            # Workers log at INFO: their "running as worker" line is what wait_app_host looks for.
            role_env = {**host_env, "SALESOPS_LOG_LEVEL": "INFO"} if role == "worker" else host_env
            if (name, role) == ("leads", "api"):  # its RPC counters tell which host served the creates
                role_env = {
                    **role_env,
                    "SALESOPS_METRICS_HOST": address,
                    "SALESOPS_METRICS_PORT": str(METRICS_PORT),
                }
            procs.append(lab.spawn(host, f"{name}-{role}", argv, role_env, cwd=ROOT))
    return procs


async def _serving(address: str) -> bool:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def wait_app_host(lab: Lab, host: str, procs: list[Proc], timeout: float) -> None:
    """APIs SERVING (database, Redis and Temporal checked) and workers polling their task queues."""
    address = lab.hosts[host].address
    for name, port in API_PORTS.items():
        target = lab.target(address, port)
        until(f"{host}/{name} SERVING", lambda t=target: asyncio.run(_serving(t)), timeout, lab)  # type: ignore[misc]
    for proc in procs:
        if proc.name.endswith("-worker"):
            service = proc.name.split("-")[0]
            until(
                f"{host}/{proc.name} running",
                lambda p=proc, s=service: f"{s} running as worker" in p.log.read_text(errors="replace"),  # type: ignore[misc]
                timeout,
                lab,
            )


def balanced_address(lab: Lab, hosts: tuple[str, ...], port: int) -> str:
    """The multi-address form of SALESOPS_<SVC>_ADDR: gRPC's ipv4 resolver, every replica listed."""
    return "ipv4:" + ",".join(f"{lab.hosts[h].address}:{port}" for h in hosts)


def start_gateway(lab: Lab, host: str, env: Mapping[str, str], app_hosts: tuple[str, ...]) -> str:
    """The gateway on `host`; the URL the test process reaches it at (a relay)."""
    gw_env = dict(env)
    gw_env.update(
        {
            "SALESOPS_GATEWAY_HOST": lab.hosts[host].address,
            "SALESOPS_GATEWAY_PORT": str(GATEWAY_PORT),
            # The load is one client and one user on purpose: no rate limit in the way.
            "SALESOPS_GATEWAY_RATE_TENANT": "0",
            "SALESOPS_GATEWAY_RATE_USER": "0",
            "SALESOPS_GATEWAY_RATE_ADDRESS": "0",
            # A busy 2-core machine runs every host: a slow create must not pass for a failover error.
            "SALESOPS_GATEWAY_TIMEOUT_SECONDS": "30",
            **{
                f"SALESOPS_{n.upper()}_ADDR": balanced_address(lab, app_hosts, p)
                for n, p in API_PORTS.items()
            },
        }
    )
    lab.spawn(host, "gateway", [sys.executable, "-m", "gateway"], gw_env, cwd=ROOT)
    url = f"http://{lab.target(lab.hosts[host].address, GATEWAY_PORT)}"

    def up() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        return False

    until("the gateway", up, 60, lab)
    return url


def served_creates(lab: Lab, host: str) -> int:
    """CreateLead calls the host's leads API answered OK (its Prometheus counter)."""
    from prometheus_client.parser import text_string_to_metric_families

    metrics = lab.target(lab.hosts[host].address, METRICS_PORT)
    text = httpx.get(f"http://{metrics}/metrics", timeout=10).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "grpc_server_handled_total"
                and labels.get("grpc_method") == "CreateLead"
                and labels.get("grpc_code") == "OK"
            ):
                total += sample.value
    return int(total)
