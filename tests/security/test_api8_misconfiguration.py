"""OWASP API8:2023 Security Misconfiguration: what production refuses, and defaults that leak.

- A service or the gateway started with ``SALESOPS_ENV=production`` and the documented dev
  secret (set, or used because none is set) exits with a clear message instead of serving:
  with that secret anyone could mint admin tokens.
- Every database engine hides bound parameters (phones, e-mails) from its error messages.
- gRPC server reflection, a map of every RPC, is off in production unless asked for.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy.exc import IntegrityError

from deploy.local.infra import free_port, port_open
from kit.auth import DEV_SECRET, AuthConfig, TokenVerifier
from kit.config import Settings
from kit.db import Database
from kit.grpc import diagnostics
from kit.grpc.server import GrpcServer

ROOT = Path(__file__).resolve().parents[2]
REAL_SECRET = "a-production-secret-nobody-has-published-0123456789"
REAL_SEALING_KEY = "tEUAvKZTkQVqy7W0XYB2nqxmk6xz2ZrC3cv9t0Pcz1Q="  # a Fernet key made for this test
REFUSAL = "SALESOPS_ENV=production refuses to start"
PHONE = "+8613812345678"
EMAIL = "li.lei@example.cn"


def start(args: list[str], env_extra: dict[str, str], port: int, log: Path) -> tuple[str, int | None, str]:
    """Run `python <args>` until it serves on `port` ("serving") or exits ("exited", code)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SALESOPS_", "OTEL_", "REDIS_URL"))}
    env.update(SALESOPS_LOG_FORMAT="text", **env_extra)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    return "exited", proc.returncode, log.read_text(errors="replace")
                if port_open("127.0.0.1", port):
                    return "serving", None, log.read_text(errors="replace")
                time.sleep(0.05)
            raise AssertionError(f"{args} neither served nor exited within 60s")
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)


def service_env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    return {
        "SALESOPS_VAR_DIR": str(tmp_path),
        "SALESOPS_KNOWLEDGE_PORT": str(port),
        "SALESOPS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # not needed to start
        "SALESOPS_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        **extra,
    }


SECRETS = [
    pytest.param({}, id="no-secret"),
    pytest.param({"SALESOPS_JWT_SECRET": DEV_SECRET}, id="dev-secret"),
]


@pytest.mark.slow
@pytest.mark.parametrize("secret", SECRETS)
def test_service_refuses_to_start_in_production_with_the_dev_secret(
    tmp_path: Path, secret: dict[str, str]
) -> None:
    port = free_port()
    env = service_env(tmp_path, port, SALESOPS_ENV="production", **secret)
    outcome, code, output = start(
        ["-m", "services.knowledge", "--role", "api"], env, port, tmp_path / "out.log"
    )
    assert outcome == "exited", f"the service served in production with the dev secret:\n{output[-2000:]}"
    assert code != 0
    assert REFUSAL in output and "SALESOPS_JWT_SECRET" in output


@pytest.mark.slow
@pytest.mark.parametrize("secret", SECRETS)
def test_gateway_refuses_to_start_in_production_with_the_dev_secret(
    tmp_path: Path, secret: dict[str, str]
) -> None:
    port = free_port()
    env = {"SALESOPS_ENV": "production", "SALESOPS_GATEWAY_PORT": str(port), **secret}
    outcome, code, output = start(["-m", "gateway"], env, port, tmp_path / "out.log")
    assert outcome == "exited", f"the gateway served in production with the dev secret:\n{output[-2000:]}"
    assert code != 0
    assert REFUSAL in output and "SALESOPS_JWT_SECRET" in output


@pytest.mark.slow
def test_service_refuses_to_start_in_production_without_a_sealing_key(tmp_path: Path) -> None:
    """Secrets at rest need a real key: without one (or with the published dev key) nothing serves."""
    port = free_port()
    env = service_env(tmp_path, port, SALESOPS_ENV="production", SALESOPS_JWT_SECRET=REAL_SECRET)
    outcome, code, output = start(
        ["-m", "services.knowledge", "--role", "api"], env, port, tmp_path / "service.log"
    )
    assert outcome == "exited", f"the service served in production without a sealing key:\n{output[-2000:]}"
    assert code != 0
    assert "SALESOPS_SECRETS_KEY" in output


@pytest.mark.slow
def test_production_with_a_real_secret_starts(tmp_path: Path) -> None:
    """The refusal is about the secret, not production: with a real one both serve."""
    port = free_port()
    env = service_env(
        tmp_path,
        port,
        SALESOPS_ENV="production",
        SALESOPS_JWT_SECRET=REAL_SECRET,
        SALESOPS_SECRETS_KEY=REAL_SEALING_KEY,
    )
    outcome, _, output = start(
        ["-m", "services.knowledge", "--role", "api"], env, port, tmp_path / "service.log"
    )
    assert outcome == "serving", output[-2000:]
    port = free_port()
    env = {
        "SALESOPS_ENV": "production",
        "SALESOPS_JWT_SECRET": REAL_SECRET,
        "SALESOPS_GATEWAY_PORT": str(port),
    }
    outcome, _, output = start(["-m", "gateway"], env, port, tmp_path / "gateway.log")
    assert outcome == "serving", output[-2000:]


async def test_database_errors_carry_no_bound_parameters(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'pii.db'}")
    assert db.engine.sync_engine.hide_parameters
    metadata = MetaData()
    contacts = Table(
        "contacts",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("phone", String(32), unique=True),
        Column("email", String(128)),
    )
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(insert(contacts).values(phone=PHONE, email=EMAIL))
        with pytest.raises(IntegrityError) as caught:
            async with db.engine.begin() as conn:
                await conn.execute(insert(contacts).values(phone=PHONE, email=EMAIL))
    finally:
        await db.dispose()
    text = str(caught.value)
    assert "UNIQUE" in text  # the error still says what went wrong...
    assert PHONE not in text and EMAIL not in text  # ...but not with whose data


@pytest.fixture
async def production_server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    monkeypatch.setenv("SALESOPS_ENV", "production")
    monkeypatch.setenv("SALESOPS_JWT_SECRET", REAL_SECRET)
    monkeypatch.setenv("SALESOPS_LEADS_LISTEN", f"127.0.0.1:{free_port()}")
    settings = Settings.from_env("leads")
    assert not settings.grpc.reflection
    server = GrpcServer(
        "leads", settings.grpc, TokenVerifier(AuthConfig.from_env()), [diagnostics.registration("leads")]
    )
    await server.start()
    yield server.address
    await server.stop(0)


async def test_reflection_is_off_in_production(production_server: str) -> None:
    async with grpc.aio.insecure_channel(production_server) as ch:
        call = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in call:
                pass
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
