"""What the outbound webhook tests share: a loopback partner receiver, the gRPC stack, a Temporal worker."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.worker import Worker

from deploy.local.infra import free_port
from kit import temporal
from kit.auth import TokenVerifier
from kit.db import Database
from kit.grpc.server import GrpcServer
from kit.migrations import upgrade_to_head
from kit.net import OutboundPolicy
from salesops.integration.v1 import integration_service_pb2_grpc
from salesops.integration.v1 import webhooks_pb2 as wh
from services.integration import api
from services.integration.outbound_activities import OutboundActivities
from services.integration.outbound_wiring import WORKFLOWS
from tests.integration.conftest import CONFIG, grpc_settings, token

LOOPBACK = OutboundPolicy.parse("127.0.0.1")


@dataclass
class Seen:
    headers: dict[str, str]
    body: bytes
    at: float  # monotonic


@dataclass
class Receiver:
    """A partner endpoint on loopback: answers from `script` in order (then `default`), records requests."""

    port: int = 0
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    default: int = 204
    seen: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def hook(self, request: Request) -> Response:
        self.seen.append(Seen(dict(request.headers), await request.body(), time.monotonic()))
        status, headers = self.script.pop(0) if self.script else (self.default, {})
        return Response(b"received" if status < 300 else b"try later", status_code=status, headers=headers)

    async def moved(self, request: Request) -> Response:
        self.seen.append(Seen(dict(request.headers), await request.body(), time.monotonic()))
        return Response(status_code=302, headers={"location": "http://169.254.169.254/latest/meta-data"})


@contextlib.asynccontextmanager
async def receiver(default: int = 204) -> AsyncIterator[Receiver]:
    r = Receiver(port=free_port(), default=default)
    app = Starlette(
        routes=[Route("/hook", r.hook, methods=["POST"]), Route("/moved", r.moved, methods=["POST"])]
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=r.port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(400):
        if server.started:
            break
        await asyncio.sleep(0.025)
    try:
        yield r
    finally:
        server.should_exit = True
        await task


@dataclass
class Stack:
    db: Database
    stub: integration_service_pb2_grpc.IntegrationServiceStub
    rt: Any
    queue: str

    async def call(self, method: str, request: Any, user: str = "admin", tenant: str = "demo") -> Any:
        md = (("authorization", f"Bearer {token(user, tenant)}"),)
        return await getattr(self.stub, method)(request, metadata=md, timeout=30)

    def worker(self, client: Client) -> Worker:
        acts = OutboundActivities(self.db, client, self.queue, policy=LOOPBACK)
        return temporal.build_worker(client, self.queue, workflows=WORKFLOWS, activities=acts.all())


@contextlib.asynccontextmanager
async def stack(database_url: str, client: Client | None = None) -> AsyncIterator[Stack]:
    db = Database(database_url, pool_size=20)
    await upgrade_to_head("integration", db)
    queue = f"outbound-{uuid.uuid4().hex[:8]}"
    rt = SimpleNamespace(db=db, settings=SimpleNamespace(task_queue=queue))
    if client is not None:
        rt.temporal = client
    server = GrpcServer("integration", grpc_settings(), TokenVerifier(CONFIG), api.registrations(rt))  # type: ignore[arg-type]
    await server.start()
    channel = grpc.aio.insecure_channel(server.address)
    try:
        yield Stack(db, integration_service_pb2_grpc.IntegrationServiceStub(channel), rt, queue)
    finally:
        await channel.close(None)
        await server.stop(0)
        await db.dispose()


@pytest.fixture
async def outbound(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("SALESOPS_OUTBOUND_ALLOW", "127.0.0.1")  # the loopback partner receivers
    async with stack(database_url) as s:
        yield s


def subscription(url: str, sid: str = "sub-1", **kw: Any) -> wh.WebhookSubscription:
    kw.setdefault("event_types", ["pipeline.DealWon", "leads.*"])
    return wh.WebhookSubscription(subscription_id=sid, display_name="ERP bridge", endpoint_url=url, **kw)


async def code_of(coro: Any) -> grpc.StatusCode:
    try:
        await coro
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def finished(env: Any, handle: WorkflowHandle[Any, Any], step: float = 600) -> Any:
    """The workflow's result; skips time while it waits (time-skipping server) or polls (dev server)."""
    for _ in range(3000):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return await handle.result()
        await env.sleep(step)
    raise AssertionError("workflow did not finish")
