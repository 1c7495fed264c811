"""A real leads gRPC server on a real database (SQLite and PostgreSQL), and demo-like callers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import grpc
import pytest

from deploy.local.infra import free_port
from kit.auth import AuthConfig, TokenMinter, TokenVerifier
from kit.config import GrpcSettings
from kit.db import Database
from kit.grpc.server import GrpcServer
from kit.migrations import upgrade_to_head
from salesops.leads.v1 import leads_service_pb2_grpc
from services.leads import api

CONFIG = AuthConfig.from_env({})
MINTER = TokenMinter(CONFIG)

USERS = {
    "admin": (["admin"], ""),
    "director-east": (["director"], "east"),
    "sup-a": (["supervisor"], "east/team-a"),
    "sup-b": (["supervisor"], "east/team-b"),
    **{f"rep-a{n}": (["rep"], "east/team-a") for n in range(1, 5)},
    **{f"rep-b{n}": (["rep"], "east/team-b") for n in range(1, 5)},
}


def token(user: str, tenant: str = "demo") -> str:
    roles, org = USERS[user]
    return MINTER.mint(user, tenant, roles, org=org)


@dataclass
class Leads:
    db: Database
    channel: grpc.aio.Channel
    stub: leads_service_pb2_grpc.LeadsServiceStub
    address: str

    def md(self, user: str, tenant: str = "demo") -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {token(user, tenant)}"),)

    async def call(self, method: str, request: Any, user: str = "admin", tenant: str = "demo") -> Any:
        return await getattr(self.stub, method)(request, metadata=self.md(user, tenant), timeout=30)


@pytest.fixture
async def leads(database_url: str) -> AsyncIterator[Leads]:
    db = Database(database_url, pool_size=30)
    await upgrade_to_head("leads", db)
    settings = GrpcSettings(
        listen=f"127.0.0.1:{free_port()}",
        reflection=False,
        grace_seconds=1.0,
        default_deadline_seconds=30.0,
        max_message_bytes=16 * 1024 * 1024,
        keepalive_time_ms=30_000,
        keepalive_timeout_ms=10_000,
    )
    # The servicer needs only the runtime's database.
    server = GrpcServer("leads", settings, TokenVerifier(CONFIG), api.registrations(SimpleNamespace(db=db)))  # type: ignore[arg-type]
    await server.start()
    channel = grpc.aio.insecure_channel(server.address)
    try:
        yield Leads(db, channel, leads_service_pb2_grpc.LeadsServiceStub(channel), server.address)
    finally:
        await channel.close()
        await server.stop(0)
        await db.dispose()
