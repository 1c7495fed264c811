"""A real notify gRPC server on loopback (real SQLite/PostgreSQL and Redis), tokens, and a client."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import grpc
import pytest

from deploy.local.infra import free_port
from kit.auth import AuthConfig, TokenMinter
from kit.config import GrpcSettings, Settings
from kit.grpc.server import GrpcServer
from kit.migrations import upgrade_to_head
from kit.runtime import Runtime
from salesops.common.v1 import types_pb2
from salesops.notify.v1 import notify_service_pb2 as M
from salesops.notify.v1 import notify_service_pb2_grpc, subscriber_pb2
from services.notify import api

MINTER = TokenMinter(AuthConfig.from_env({}))
TENANT = "demo"


def token(user: str, roles: list[str], *, tenant: str = TENANT, org: str = "") -> str:
    return MINTER.mint(user, tenant, roles, org=org)


def auth(tok: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {tok}"),)


SERVICE = MINTER.mint_service_token("leads", TENANT)
ADMIN = token("admin-1", ["admin"])
REP_A1 = token("rep-a1", ["rep"], org="east/team-a")
REP_A2 = token("rep-a2", ["rep"], org="east/team-a")
SUP_A = token("sup-a", ["supervisor"], org="east/team-a")
OTHER_TENANT_REP = token("rep-a1", ["rep"], tenant="acme", org="east/team-a")

R = types_pb2
DIRECTORY = [
    ("director-east", "East Director", "east", [R.ROLE_DIRECTOR]),
    ("sup-a", "Team A Supervisor", "east/team-a", [R.ROLE_SUPERVISOR]),
    ("sup-b", "Team B Supervisor", "east/team-b", [R.ROLE_SUPERVISOR]),
    ("rep-a1", "Rep A1", "east/team-a", [R.ROLE_REP]),
    ("rep-a2", "Rep A2", "east/team-a", [R.ROLE_REP]),
    ("rep-b1", "Rep B1", "east/team-b", [R.ROLE_REP]),
]


@pytest.fixture(autouse=True)
def outbound_allows_loopback_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The third-party fakes listen on 127.0.0.1, which the outbound policy refuses unless listed."""
    monkeypatch.setenv("SALESOPS_OUTBOUND_ALLOW", "127.0.0.1")


@dataclass
class NotifyStack:
    rt: Runtime
    server: GrpcServer
    channel: grpc.aio.Channel
    stub: notify_service_pb2_grpc.NotifyServiceStub


def notify_settings(database_url: str, redis_url: str) -> Settings:
    base = Settings.from_env("notify")
    grpc_settings = GrpcSettings(
        listen=f"127.0.0.1:{free_port()}",
        reflection=False,
        grace_seconds=1.0,
        default_deadline_seconds=10.0,
        max_message_bytes=8 * 1024 * 1024,
        keepalive_time_ms=30_000,
        keepalive_timeout_ms=10_000,
    )
    return replace(
        base,
        database_url=database_url,
        redis_url=redis_url,
        grpc=grpc_settings,
        task_queue=f"notify-test-{uuid.uuid4().hex[:8]}",
    )


async def seed_directory(
    stub: notify_service_pb2_grpc.NotifyServiceStub, tenant_token: str = SERVICE
) -> None:
    subs = [
        subscriber_pb2.Subscriber(
            user_id=u,
            display_name=name,
            org_unit_path=org,
            roles=roles,
            active=True,  # type: ignore[arg-type]
            phone=f"+86138000{i:05d}",
            email=f"{u}@example.com",
            wecom_user_id=f"wx-{u}",
        )
        for i, (u, name, org, roles) in enumerate(DIRECTORY)
    ]
    await stub.BatchUpsertSubscribers(
        M.BatchUpsertSubscribersRequest(subscribers=subs), metadata=auth(tenant_token)
    )


@pytest.fixture
async def notify(sqlite_url: str, redis_url: str) -> AsyncIterator[NotifyStack]:
    async for stack in _stack(sqlite_url, redis_url):
        yield stack


@pytest.fixture
async def notify_any_db(database_url: str, redis_url: str) -> AsyncIterator[NotifyStack]:
    """The same stack once on SQLite and once on PostgreSQL."""
    async for stack in _stack(database_url, redis_url):
        yield stack


async def _stack(database_url: str, redis_url: str) -> AsyncIterator[NotifyStack]:
    rt = Runtime(notify_settings(database_url, redis_url))
    await upgrade_to_head("notify", rt.db)
    server = GrpcServer("notify", rt.settings.grpc, rt.verifier, api.registrations(rt))
    await server.start()
    channel = grpc.aio.insecure_channel(server.address)
    stub = notify_service_pb2_grpc.NotifyServiceStub(channel)
    await seed_directory(stub)
    try:
        yield NotifyStack(rt, server, channel, stub)
    finally:
        await channel.close()
        for reg in server.registrations:
            hub = getattr(reg.servicer, "hub", None)
            if hub is not None:
                await hub.stop()
        await server.stop(0)
        await rt.close()


async def outbox_types(stack: NotifyStack) -> list[str]:
    """Types of the events notify wrote to its outbox, oldest first."""
    from sqlalchemy import select

    from services.notify.store import outbox

    async with stack.rt.db.system_session() as s:
        return list(await s.scalars(select(outbox.c.type).order_by(outbox.c.created_at, outbox.c.id)))
