"""A real pipeline gRPC server on a real database (SQLite and PostgreSQL), and demo-org callers."""

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
from salesops.pipeline.v1 import pipeline_service_pb2_grpc
from services.pipeline import api

CONFIG = AuthConfig.from_env({})
MINTER = TokenMinter(CONFIG)


def token(user: str, tenant: str = "demo") -> str:
    """A token of a user of the demo org chart (deploy/local/demo.py), in `tenant`."""
    return demo_token(MINTER, user, tenant=tenant)


@dataclass
class Pipeline:
    db: Database
    stub: pipeline_service_pb2_grpc.PipelineServiceStub
    address: str

    async def call(self, method: str, request: Any, user: str = "admin", tenant: str = "demo") -> Any:
        return await self.call_with(token(user, tenant), method, request)

    async def call_with(self, bearer: str, method: str, request: Any) -> Any:
        """A call with any token (partner and service keys, scopes)."""
        md = (("authorization", f"Bearer {bearer}"),)
        return await getattr(self.stub, method)(request, metadata=md, timeout=30)


@pytest.fixture
async def pipeline(database_url: str) -> AsyncIterator[Pipeline]:
    db = Database(database_url, pool_size=30)
    await upgrade_to_head("pipeline", db)
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
    server = GrpcServer("pipeline", settings, TokenVerifier(CONFIG), api.registrations(rt))  # type: ignore[arg-type]
    await server.start()
    channel = grpc.aio.insecure_channel(server.address)
    try:
        yield Pipeline(db, pipeline_service_pb2_grpc.PipelineServiceStub(channel), server.address)
    finally:
        await channel.close(None)
        await server.stop(0)
        await db.dispose()
