"""A real integration gRPC server on a real database (SQLite and PostgreSQL), and demo-org callers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import grpc
import pytest

from deploy.local.demo import demo_token
from deploy.local.infra import free_port
from kit.auth import AuthConfig, TokenMinter, TokenVerifier
from kit.config import GrpcSettings
from kit.db import Database
from kit.grpc.server import GrpcServer
from kit.migrations import upgrade_to_head
from salesops.integration.v1 import integration_service_pb2_grpc
from services.integration import api

CONFIG = AuthConfig.from_env({})
MINTER = TokenMinter(CONFIG)


def token(user: str, tenant: str = "demo") -> str:
    return demo_token(MINTER, user, tenant=tenant)


def service_token(tenant: str = "demo") -> str:
    """What the gateway's receiver forwards under: a service token of the tenant."""
    return MINTER.mint("service:gateway-hooks", tenant, ["service"])


def grpc_settings() -> GrpcSettings:
    return GrpcSettings(
        listen=f"127.0.0.1:{free_port()}",
        reflection=False,
        grace_seconds=1.0,
        default_deadline_seconds=30.0,
        max_message_bytes=16 * 1024 * 1024,
        keepalive_time_ms=30_000,
        keepalive_timeout_ms=10_000,
    )


@dataclass
class Integration:
    db: Database
    stub: integration_service_pb2_grpc.IntegrationServiceStub
    address: str

    async def call(self, method: str, request: Any, user: str = "admin", tenant: str = "demo") -> Any:
        return await self.call_with(token(user, tenant), method, request)

    async def call_with(self, bearer: str, method: str, request: Any) -> Any:
        md = (("authorization", f"Bearer {bearer}"),)
        return await getattr(self.stub, method)(request, metadata=md, timeout=30)


@pytest.fixture
async def integration(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Integration]:
    monkeypatch.setenv("SALESOPS_OUTBOUND_ALLOW", "127.0.0.1")  # the loopback fake systems
    db = Database(database_url, pool_size=20)
    await upgrade_to_head("integration", db)
    rt = SimpleNamespace(db=db)
    server = GrpcServer("integration", grpc_settings(), TokenVerifier(CONFIG), api.registrations(rt))  # type: ignore[arg-type]
    await server.start()
    channel = grpc.aio.insecure_channel(server.address)
    try:
        yield Integration(db, integration_service_pb2_grpc.IntegrationServiceStub(channel), server.address)
    finally:
        await channel.close(None)
        await server.stop(0)
        await db.dispose()
