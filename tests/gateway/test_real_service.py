"""WhoAmI of a real service process through the gateway.

The knowledge service stands in for the diagnostics backend (leads is being built
in the same tree right now); WhoAmI is the kit's, served alike by every service.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from deploy.local.infra import free_port, wait_port
from gateway.app import create_app
from gateway.config import GatewaySettings
from kit.config import SERVICES
from tests.gateway.conftest import auth, serve_app

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture
def service_process(tmp_path: Path, redis_url: str) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SALESOPS_", "REDIS_URL"))}
    env.update(
        SALESOPS_VAR_DIR=str(tmp_path),
        SALESOPS_KNOWLEDGE_PORT=str(port),
        SALESOPS_REDIS_URL=redis_url,
        SALESOPS_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",  # not needed to answer WhoAmI
        SALESOPS_LOG_LEVEL="WARNING",
    )
    proc = subprocess.Popen([sys.executable, "-m", "services.knowledge", "--role", "api"], cwd=ROOT, env=env)
    try:
        wait_port("127.0.0.1", port, 60, proc)  # type: ignore[arg-type]
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


async def test_whoami_of_a_real_service(service_process: str, redis_url: str) -> None:
    addresses = {name: f"127.0.0.1:{free_port()}" for name in SERVICES}
    addresses["leads"] = service_process  # where /v1/whoami goes
    settings = replace(GatewaySettings(addresses=addresses, redis_url=redis_url))
    async with serve_app(create_app(settings=settings)) as url, httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/v1/whoami", headers=auth("rep-q7", "acme"))
        assert r.status_code == 200, r.text
        assert r.json() == {
            "userId": "rep-q7",
            "tenant": "acme",
            "roles": ["rep"],
            "org": "east/team-a",
            "service": "knowledge",
        }
        # The service checks the token again: a token the gateway never saw is refused by both.
        r = await client.get("/v1/whoami", headers={"Authorization": "Bearer x.y.z"})
        assert r.status_code == 401


def test_gateway_process_with_two_workers(service_process: str, redis_url: str) -> None:
    """`python -m gateway` as deployed, with SALESOPS_GATEWAY_WORKERS=2 sharing one port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SALESOPS_", "REDIS_URL"))}
    env.update(
        SALESOPS_LEADS_ADDR=service_process,
        SALESOPS_GATEWAY_PORT=str(port),
        SALESOPS_GATEWAY_WORKERS="2",
        SALESOPS_REDIS_URL=redis_url,
        SALESOPS_LOG_LEVEL="WARNING",
    )
    proc = subprocess.Popen([sys.executable, "-m", "gateway"], cwd=ROOT, env=env)
    try:
        wait_port("127.0.0.1", port, 60, proc)  # type: ignore[arg-type]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for _ in range(20):  # connections land on either worker
                r = client.get("/v1/whoami", headers={**auth("rep-w2"), "Connection": "close"})
                assert r.status_code == 200 and r.json()["userId"] == "rep-w2"
            assert client.get("/healthz").json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(30)
    assert proc.returncode == 0
