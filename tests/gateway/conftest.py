"""A real gateway (uvicorn on a free port, in the test's loop) in front of test-only gRPC backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
import uvicorn

from deploy.local.infra import free_port
from gateway.__main__ import SERVE_OPTIONS
from gateway.app import create_app
from gateway.config import GatewaySettings
from kit.auth import AuthConfig, TokenMinter
from kit.config import SERVICES
from kit.grpc.server import GrpcServer
from kit.telemetry import setup_tracing
from tests.gateway.backends import EchoLeads, StreamingNotify, build_server, unbuilt_registrations

MINTER = TokenMinter(AuthConfig.from_env({}))


def token(user: str = "rep-a1", tenant: str = "demo", roles: tuple[str, ...] = ("rep",)) -> str:
    return MINTER.mint(user, tenant, list(roles), org="east/team-a")


def auth(user: str = "rep-a1", tenant: str = "demo") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user, tenant)}"}


@dataclass
class Running:
    url: str
    client: httpx.AsyncClient
    leads: EchoLeads
    notify: StreamingNotify
    settings: GatewaySettings


@asynccontextmanager
async def serve_app(app: Any) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            **SERVE_OPTIONS,  # as `python -m gateway` serves
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def running_gateway(
    redis_url: str, *, all_services: bool = False, **overrides: Any
) -> AsyncIterator[Running]:
    """`all_services`: pipeline, knowledge and integration answer (UNIMPLEMENTED) instead of being down."""
    setup_tracing("gateway-test")  # as `python -m gateway` does: spans and trace propagation on
    leads, notify = EchoLeads(), StreamingNotify()
    servers: list[GrpcServer] = [build_server("leads", leads), build_server("notify", notify)]
    if all_services:
        servers.append(build_server("unbuilt", *unbuilt_registrations()))
    for s in servers:
        await s.start()
    # Otherwise the other services are not running: their address is a closed port.
    addresses = {name: f"127.0.0.1:{free_port()}" for name in SERVICES}
    addresses["leads"], addresses["notify"] = servers[0].address, servers[1].address
    if all_services:
        for name in ("pipeline", "knowledge", "integration"):
            addresses[name] = servers[2].address
    settings = replace(GatewaySettings(addresses=addresses, redis_url=redis_url), **overrides)
    try:
        async with (
            serve_app(create_app(settings=settings)) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as client,
        ):
            yield Running(url, client, leads, notify, settings)
    finally:
        for s in servers:
            await s.stop(0)


GatewayFactory = Callable[..., AbstractAsyncContextManager[Running]]


@pytest.fixture
def gateway_factory(redis_url: str) -> GatewayFactory:
    def make(**overrides: Any) -> AbstractAsyncContextManager[Running]:
        return running_gateway(overrides.pop("redis_url", redis_url), **overrides)

    return make


@pytest.fixture
async def gw(gateway_factory: GatewayFactory) -> AsyncIterator[Running]:
    async with gateway_factory() as running:
        yield running
