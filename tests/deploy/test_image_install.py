"""The container image recipe, exercised without a container engine.

The Dockerfile's two steps are the scripts in deploy/image/: `build-wheels.sh` (build
stage: stubs generated from protos/, wheels of everything) and `install.sh` (final
stage: a virtualenv from those wheels only, no pip left). This test runs both on the
build context the Dockerfile would see (tracked files minus .dockerignore) into a
temporary prefix, then runs the leads service from that prefix as the Kubernetes
manifests do: production mode, the migration as a separate command, the API answering
grpc.health.v1 SERVING against a real Redis and a real Temporal server.
"""

from __future__ import annotations

import fcntl
import fnmatch
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.fernet import Fernet
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.k8s import generate
from deploy.local.demo import demo_token
from deploy.local.infra import free_port, start_temporal_dev
from kit.auth import AuthConfig, TokenMinter
from salesops.leads.v1 import leads_service_pb2, leads_service_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "deploy" / "image"


def image_test(test: Callable[..., None]) -> Callable[..., None]:
    """Slow: the build may take minutes on a loaded machine (about 1 on an idle one), hence a
    longer timeout than the suite's; grouped on one xdist worker where the mark works."""
    marked: Callable[..., None] = pytest.mark.slow(
        pytest.mark.xdist_group("image")(pytest.mark.timeout(1500)(test))
    )
    return marked


def _ignored(path: str, patterns: list[str]) -> bool:
    """Does a .dockerignore pattern exclude `path` or one of its parent directories?"""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, pattern) or fnmatch.fnmatchcase(prefix.rsplit("/", 1)[-1], bare):
                return True
    return False


def build_context(dest: Path) -> int:
    """Copy what `docker build .` would send: files git knows or would add, minus .dockerignore."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    copied = 0
    for rel in filter(None, listed.split("\0")):
        source = ROOT / rel
        if _ignored(rel, patterns) or not source.is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest / rel)
        copied += 1
    return copied


def run_script(script: str, *args: Path, cwd: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        ["sh", str(IMAGE / script), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image's /opt/salesops, built here from the build context, once per test run.

    xdist workers share it: the first to take the lock builds, the others wait and reuse
    (the xdist_group mark does not keep tests on one worker with this pytest). Build
    context and wheels are removed once installed; pytest's temporary-directory
    retention removes the prefix with old runs.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this run
    base, prefix = root / "salesops-image", root / "salesops-image" / "prefix"
    with (root / "salesops-image.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (base / "installed").exists():
            shutil.rmtree(base, ignore_errors=True)
            context, wheels = base / "context", base / "wheels"
            context.mkdir(parents=True)
            assert build_context(context) > 50
            assert not (context / "tests").exists() and not (context / ".venv").exists()
            run_script("build-wheels.sh", context, wheels, cwd=base)
            run_script("install.sh", wheels, prefix, cwd=base)
            shutil.rmtree(context)
            shutil.rmtree(wheels)
            (base / "installed").touch()
    return prefix


def _stages() -> dict[str, list[str]]:
    """The Dockerfile's instructions per stage name (continuation lines joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            current = stages.setdefault(line.split()[-1], [])
        current.append(line)
    return stages


def test_dockerfile_builds_in_one_stage_and_runs_non_root_in_another() -> None:
    stages = _stages()
    assert list(stages) == ["build", "runtime"]
    build, final = stages["build"], stages["runtime"]
    assert any("deploy/image/build-wheels.sh" in line for line in build)
    assert any("/install.sh /wheels /opt/salesops" in line for line in final)
    # No compiler, no package manager run, no build tools in the image that ships.
    assert not any(
        word in line for line in final for word in ("apt-get", "build-essential", "gcc", "pip install")
    )
    assert [line for line in final if line.startswith("USER ")] == ["USER 10001:10001"]
    assert final[-1].startswith("CMD ")
    args = [
        line
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("ARG PYTHON_IMAGE=")
    ]
    assert args == ["ARG PYTHON_IMAGE=python:3.11-slim-bookworm"]


@image_test
def test_final_stage_has_no_pip_and_imports_from_the_prefix(installed: Path) -> None:
    python = installed / "bin" / "python"
    assert not (installed / "bin" / "pip").exists()
    probe = subprocess.run(
        [str(python), "-c", "import services, salesops, kit; print(services.__file__, salesops.__file__)"],
        cwd=installed,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    for location in probe.stdout.split():
        assert location.startswith(str(installed)), location  # not the source tree
    has_pip = subprocess.run([str(python), "-c", "import pip"], capture_output=True)
    assert has_pip.returncode != 0


def _tables(db_file: Path) -> set[str]:
    if not db_file.exists():
        return set()
    with sqlite3.connect(db_file) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError:
            return -1
        return int(reply.status)


@pytest.fixture
def temporal_address(tmp_path: Path) -> Iterator[str]:
    """A Temporal dev server of this test's own, in memory."""
    server = start_temporal_dev(None, log_dir=tmp_path)
    yield server.address
    server.stop()


@image_test
def test_installed_leads_serves_in_production_mode_after_its_migration_job(
    installed: Path, tmp_path: Path, redis_url: str, temporal_address: str
) -> None:
    secret = secrets.token_urlsafe(48)
    db_file = tmp_path / "leads.db"
    port = free_port()
    env = {
        "PATH": f"{installed / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SALESOPS_ENV": "production",
        "SALESOPS_JWT_SECRET": secret,
        "SALESOPS_SECRETS_KEY": Fernet.generate_key().decode(),
        "SALESOPS_LEADS_DATABASE_URL": f"sqlite+aiosqlite:///{db_file}",
        "SALESOPS_REDIS_URL": redis_url,
        "SALESOPS_TEMPORAL_ADDRESS": temporal_address,
        "SALESOPS_LEADS_PORT": str(port),
        "SALESOPS_GRPC_GRACE_SECONDS": "2",
        "SALESOPS_HEALTH_INTERVAL_SECONDS": "0.5",
        "SALESOPS_VAR_DIR": str(tmp_path / "var"),
        "OTEL_TRACES_EXPORTER": "none",
    }
    python = str(installed / "bin" / "python")
    address = f"127.0.0.1:{port}"
    log = (tmp_path / "leads.log").open("wb")
    # The API Deployment's command; cwd outside the source tree.
    proc = subprocess.Popen(
        [python, "-m", "services.leads", "--role", "api"], cwd=tmp_path, env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 120
        while _health(address) != health_pb2.HealthCheckResponse.SERVING:
            assert proc.poll() is None, (tmp_path / "leads.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "leads never answered SERVING"
            time.sleep(0.2)
        # Production never migrates on start: the schema is the migration Job's work.
        assert "alembic_version" not in _tables(db_file)

        minter = TokenMinter(AuthConfig.from_env({"SALESOPS_JWT_SECRET": secret}))
        metadata = (("authorization", f"Bearer {demo_token(minter, 'admin')}"),)
        with grpc.insecure_channel(address) as channel:
            stub = leads_service_pb2_grpc.LeadsServiceStub(channel)
            with pytest.raises(grpc.RpcError):
                stub.ListLeads(leads_service_pb2.ListLeadsRequest(), metadata=metadata, timeout=10)

            # The migration Job's command, from the same prefix.
            migrate = subprocess.run(
                [python, "-m", "kit.migrations", "leads", "upgrade"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
            )
            assert migrate.returncode == 0, migrate.stderr[-4000:]
            assert {"alembic_version", "outbox"} <= _tables(db_file)
            reply = stub.ListLeads(leads_service_pb2.ListLeadsRequest(), metadata=metadata, timeout=10)
            assert list(reply.leads) == []

        # SIGTERM (what the kubelet sends) drains and exits cleanly within the grace period.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (tmp_path / "leads.log").read_text()[-4000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        log.close()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _probe(container: dict[str, Any]) -> str:
    """The liveness probe's HTTP path, as deploy/k8s/generate.py writes it."""
    path: str = container["livenessProbe"]["httpGet"]["path"]
    return path


@image_test
def test_installed_worker_and_gateway_answer_their_manifest_probes(
    installed: Path, tmp_path: Path, redis_url: str, temporal_address: str
) -> None:
    """What the kubelet asks a worker (no gRPC: its metrics listener) and the gateway."""
    (worker,) = generate.pod_spec("leads", "worker")["containers"]
    (gateway,) = generate.gateway()[0]["spec"]["template"]["spec"]["containers"]
    metrics_port, gateway_port = free_port(), free_port()
    env = {
        "PATH": f"{installed / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SALESOPS_ENV": "production",
        "SALESOPS_JWT_SECRET": secrets.token_urlsafe(48),
        "SALESOPS_SECRETS_KEY": Fernet.generate_key().decode(),
        "SALESOPS_LEADS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'leads.db'}",
        "SALESOPS_REDIS_URL": redis_url,
        "SALESOPS_TEMPORAL_ADDRESS": temporal_address,
        "SALESOPS_GATEWAY_PORT": str(gateway_port),
        "SALESOPS_VAR_DIR": str(tmp_path / "var"),
        "OTEL_TRACES_EXPORTER": "none",
    }
    python = str(installed / "bin" / "python")
    migrate = subprocess.run(
        [python, "-m", "kit.migrations", "leads", "upgrade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert migrate.returncode == 0, migrate.stderr[-4000:]
    commands = {
        "worker": (
            [python, "-m", "services.leads", "--role", "worker"],
            {"SALESOPS_METRICS_PORT": str(metrics_port)},
        ),
        "gateway": ([python, "-m", "gateway"], {}),
    }
    urls = {
        "worker": f"http://127.0.0.1:{metrics_port}{_probe(worker)}",
        "gateway": f"http://127.0.0.1:{gateway_port}{_probe(gateway)}",
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, (command, extra) in commands.items():
            with (tmp_path / f"{name}.log").open("wb") as log:
                procs[name] = subprocess.Popen(
                    command, cwd=tmp_path, env={**env, **extra}, stdout=log, stderr=log
                )
        deadline = time.monotonic() + 120
        for name, url in urls.items():
            while not _http_ok(url):
                assert procs[name].poll() is None, (tmp_path / f"{name}.log").read_text()[-4000:]
                assert time.monotonic() < deadline, f"{name} never answered {url}"
                time.sleep(0.2)
        for name, proc in procs.items():
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=90)
            said = (tmp_path / f"{name}.log").read_text()
            # uvicorn re-raises SIGTERM once it has shut down cleanly (exit 143 in a pod).
            assert code in ((0, -signal.SIGTERM) if name == "gateway" else (0,)), said[-4000:]
            if name == "gateway":
                assert "Application shutdown complete" in said
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
