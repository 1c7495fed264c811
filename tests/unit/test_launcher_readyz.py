"""The gateway's /readyz under `make run`: the launcher's supervised children, per child.

A real gRPC health server answers for every service (all SERVING); the launcher's
status file alone decides whether a restarting child makes the gateway not ready."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.app import create_app
from gateway.config import GatewaySettings
from gateway.supervision import STATUS_ENV
from kit.config import SERVICES
from tests.gateway.conftest import serve_app


class Serving(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    async def Check(self, request: Any, context: Any) -> health_pb2.HealthCheckResponse:
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture
async def serving() -> AsyncIterator[int]:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(Serving(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield port
    await server.stop(0)


def _write(path: Path, leads_state: str, restarts: int, last_exit: str | None) -> None:
    children = {
        name: {"state": "up", "pid": 1, "restarts": 0, "last_exit": None, "cmd": ["x"]}
        for name in ("redis", "temporal", *SERVICES, "gateway")
    }
    children["leads"].update(state=leads_state, restarts=restarts, last_exit=last_exit)
    path.write_text(json.dumps({"launcher_pid": 1, "supervising": True, "children": children}))


async def test_readyz_shows_each_supervised_child_and_is_not_ready_while_one_restarts(
    serving: int, redis_url: str, tmp_path: Path
) -> None:
    status = tmp_path / "supervisor.json"
    _write(status, "restarting", 2, "killed by SIGKILL")
    os.environ[STATUS_ENV] = str(status)
    settings = GatewaySettings(addresses={n: f"127.0.0.1:{serving}" for n in SERVICES}, redis_url=redis_url)
    async with serve_app(create_app(settings=settings)) as url, httpx.AsyncClient(base_url=url) as client:
        reply = await client.get("/readyz")
        assert reply.status_code == 503
        body = reply.json()
        assert set(body["services"].values()) == {"SERVING"}
        assert body["supervised"]["leads"] == {
            "state": "restarting",
            "restarts": 2,
            "last_exit": "killed by SIGKILL",
        }
        assert "cmd" not in body["supervised"]["redis"] and "pid" not in body["supervised"]["redis"]

        _write(status, "up", 2, "killed by SIGKILL")  # the launcher started it again
        reply = await client.get("/readyz")
        assert reply.status_code == 200 and reply.json()["ready"] is True
        assert reply.json()["supervised"]["leads"]["restarts"] == 2


async def test_readyz_without_a_launcher_is_the_backends_alone(serving: int, redis_url: str) -> None:
    settings = GatewaySettings(addresses={n: f"127.0.0.1:{serving}" for n in SERVICES}, redis_url=redis_url)
    async with serve_app(create_app(settings=settings)) as url, httpx.AsyncClient(base_url=url) as client:
        reply = await client.get("/readyz")
        assert reply.status_code == 200 and set(reply.json()) == {"ready", "services"}
