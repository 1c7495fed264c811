"""A real knowledge gRPC server on a real database (SQLite and PostgreSQL), and demo-org callers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
from salesops.knowledge.v1 import knowledge_service_pb2_grpc
from services.knowledge import api

CONFIG = AuthConfig.from_env({})
MINTER = TokenMinter(CONFIG)


def token(user: str, tenant: str = "demo") -> str:
    """A token of a user of the demo org chart (deploy/local/demo.py), in `tenant`."""
    return demo_token(MINTER, user, tenant=tenant)


@dataclass
class Knowledge:
    db: Database
    stub: knowledge_service_pb2_grpc.KnowledgeServiceAsyncStub
    address: str

    async def call(self, method: str, request: Any, user: str = "admin", tenant: str = "demo") -> Any:
        md = (("authorization", f"Bearer {token(user, tenant)}"),)
        return await getattr(self.stub, method)(request, metadata=md, timeout=30)

    async def fails(
        self, code: grpc.StatusCode, method: str, request: Any, user: str = "admin", tenant: str = "demo"
    ) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await self.call(method, request, user, tenant)
        assert caught.value.code() == code, caught.value.details()
        return caught.value


@pytest.fixture
async def knowledge(database_url: str) -> AsyncIterator[Knowledge]:
    async with running_knowledge(database_url) as k:
        yield k


@asynccontextmanager
async def running_knowledge(database_url: str) -> AsyncIterator[Knowledge]:
    db = Database(database_url, pool_size=10)
    await upgrade_to_head("knowledge", db)
    settings = GrpcSettings(
        listen=f"127.0.0.1:{free_port()}",
        reflection=False,
        grace_seconds=1.0,
        default_deadline_seconds=30.0,
        max_message_bytes=16 * 1024 * 1024,
        keepalive_time_ms=30_000,
        keepalive_timeout_ms=10_000,
    )
    rt = SimpleNamespace(db=db)
    server = GrpcServer("knowledge", settings, TokenVerifier(CONFIG), api.registrations(rt))  # type: ignore[arg-type]
    await server.start()
    channel = grpc.aio.insecure_channel(server.address)
    try:
        stub = knowledge_service_pb2_grpc.KnowledgeServiceStub(channel)
        yield Knowledge(db, stub, server.address)  # type: ignore[arg-type]
    finally:
        await channel.close(None)
        await server.stop(0)
        await db.dispose()
