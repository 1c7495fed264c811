"""A real leads gRPC server on a real database (SQLite and PostgreSQL), and demo-like callers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from temporalio.testing import WorkflowEnvironment

from deploy.local.demo import demo_token
from deploy.local.infra import free_port
from kit.auth import AuthConfig, TokenMinter, TokenVerifier
from kit.config import GrpcSettings
from kit.db import Database
from kit.grpc.server import GrpcServer
from kit.migrations import upgrade_to_head
from kit.temporal import WorkerRunner, build_worker
from salesops.leads.v1 import leads_service_pb2_grpc
from services.leads import api
from services.leads.app import SPEC

CONFIG = AuthConfig.from_env({})
MINTER = TokenMinter(CONFIG)


def token(user: str, tenant: str = "demo") -> str:
    """A token of a user of the demo org chart (deploy/local/demo.py), in `tenant`."""
    return demo_token(MINTER, user, tenant=tenant)


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


@asynccontextmanager
async def serving(database_url: str, **runtime: Any) -> AsyncIterator[Leads]:
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
    # The servicer needs the runtime's database (and, to start workflows, its Temporal client and queue).
    rt = SimpleNamespace(db=db, **runtime)
    server = GrpcServer("leads", settings, TokenVerifier(CONFIG), api.registrations(rt))  # type: ignore[arg-type]
    await server.start()
    channel = grpc.aio.insecure_channel(server.address)
    try:
        yield Leads(db, channel, leads_service_pb2_grpc.LeadsServiceStub(channel), server.address)
    finally:
        await channel.close(None)
        await server.stop(0)
        await db.dispose()


@pytest.fixture
async def leads(database_url: str) -> AsyncIterator[Leads]:
    async with serving(database_url) as served:
        yield served


@pytest.fixture
async def leads_with_worker(
    database_url: str, temporal_skipping: WorkflowEnvironment
) -> AsyncIterator[Leads]:
    """The leads server plus a Temporal worker of its workflows (time-skipping test server)."""
    queue = f"leads-{uuid.uuid4().hex[:8]}"
    settings = SimpleNamespace(task_queue=queue)
    async with serving(database_url, temporal=temporal_skipping.client, settings=settings) as served:
        rt = SimpleNamespace(db=served.db)
        runner = WorkerRunner(
            build_worker(
                temporal_skipping.client,
                queue,
                workflows=list(SPEC.workflows),
                activities=list(SPEC.activities(rt)),  # type: ignore[arg-type]
            )
        )
        runner.start()
        try:
            yield served
        finally:
            await runner.stop()
