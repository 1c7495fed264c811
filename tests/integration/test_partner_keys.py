"""Partner keys over real gRPC, a real database and Redis: the whole lifecycle.

Create (secret shown once, only its hash stored), exchange (a JWT the services verify),
scope refused, expired, revoked (refused within seconds by every server sharing Redis),
rotated with overlap, rate limited across processes, audit, admins only, other tenant.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from sqlalchemy import select, text, update

from kit.auth import TokenVerifier
from kit.db import Database
from kit.grpc.errors import status_from_error
from kit.grpc.partners import PartnerGuard
from kit.grpc.server import GrpcServer
from kit.migrations import upgrade_to_head
from salesops.common.v1 import diagnostics_pb2, diagnostics_pb2_grpc
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import integration_service_pb2_grpc
from salesops.integration.v1 import partner_pb2 as p
from services.integration import api
from services.integration.domain import partner_keys as rules
from services.integration.store import outbox
from services.integration.store_partner_keys import PartnerKeyChangeRow, PartnerKeyRow, PartnerKeySecretRow
from tests.integration.conftest import CONFIG, grpc_settings, token


@dataclass
class Node:
    server: GrpcServer
    channel: grpc.aio.Channel

    @property
    def stub(self) -> Any:  # the stubs are typed for the sync API
        return integration_service_pb2_grpc.IntegrationServiceStub(self.channel)

    async def whoami(self, bearer: str) -> diagnostics_pb2.WhoAmIResponse:
        stub = diagnostics_pb2_grpc.DiagnosticsServiceStub(self.channel)
        answer: diagnostics_pb2.WhoAmIResponse = await stub.WhoAmI(
            diagnostics_pb2.WhoAmIRequest(), metadata=(("authorization", f"Bearer {bearer}"),), timeout=10
        )
        return answer


@dataclass
class World:
    db: Database
    nodes: list[Node]  # two "processes" of the service, sharing the database and Redis

    async def admin(self, method: str, request: Any, user: str = "admin", tenant: str = "demo") -> Any:
        md = (("authorization", f"Bearer {token(user, tenant)}"),)
        return await getattr(self.nodes[0].stub, method)(request, metadata=md, timeout=30)

    async def exchange(self, secret: str, *scopes: str, node: int = 0) -> pb.ExchangePartnerKeyResponse:
        request = pb.ExchangePartnerKeyRequest(secret=secret, scopes=scopes)
        answer: pb.ExchangePartnerKeyResponse = await self.nodes[node].stub.ExchangePartnerKey(
            request, timeout=30
        )
        return answer


@pytest.fixture
async def world(database_url: str, redis_url: str) -> AsyncIterator[World]:
    db = Database(database_url, pool_size=20)
    await upgrade_to_head("integration", db)
    nodes = []
    clients = []
    for _ in range(2):
        redis = aioredis.Redis.from_url(redis_url)
        clients.append(redis)
        guard = PartnerGuard(redis)
        rt = SimpleNamespace(db=db, auth_config=CONFIG, partners=guard)
        server = GrpcServer(
            "integration",
            grpc_settings(),
            TokenVerifier(CONFIG),
            api.registrations(rt),  # type: ignore[arg-type]
            partners=guard,
        )
        await server.start()
        nodes.append(Node(server, grpc.aio.insecure_channel(server.address)))
    try:
        yield World(db, nodes)
    finally:
        for node in nodes:
            await node.channel.close(None)
            await node.server.stop(0)
        for client in clients:
            await client.aclose()
        await db.dispose()


def ts(at: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(at)
    return out


def new_key(key_id: str = "01JPK0000000000000000000A1", **fields: Any) -> p.PartnerKey:
    fields.setdefault("scopes", ["integration.read", "leads.read"])
    fields.setdefault("expire_time", ts(datetime.now(UTC) + timedelta(days=90)))
    fields.setdefault("display_name", "ERP 回写")
    return p.PartnerKey(key_id=key_id, partner_name="Kingdee", **fields)


async def create(world: World, key: p.PartnerKey | None = None) -> tuple[p.PartnerKey, str]:
    answer = await world.admin("CreatePartnerKey", pb.CreatePartnerKeyRequest(partner_key=key or new_key()))
    return answer.partner_key, answer.secret


def refusal(err: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> tuple[grpc.StatusCode, str]:
    for detail in status_from_error(err.value).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return err.value.code(), str(info.reason)
    return err.value.code(), ""


async def test_create_shows_the_secret_once_and_stores_only_its_hash(world: World) -> None:
    sent = new_key()
    key, secret = await create(world, sent)
    assert rules.looks_like_secret(secret) and secret.startswith("so_test_")  # not production
    assert key.key_prefix == secret[:12] and key.state == p.PARTNER_KEY_STATE_ACTIVE
    assert key.rate_limit_per_minute == 600 and key.audit.created_by == "admin"
    again = await world.admin("CreatePartnerKey", pb.CreatePartnerKeyRequest(partner_key=sent))
    assert again.secret == "" and again.partner_key.key_id == key.key_id  # a retry: not shown twice
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create(world, new_key(display_name="other"))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    got = await world.admin("GetPartnerKey", pb.GetPartnerKeyRequest(key_id=key.key_id))
    assert secret not in str(got) and got.partner_key.key_prefix == key.key_prefix
    rows: list[Any] = []
    async with world.db.engine.connect() as conn:
        for table in ("partner_keys", "partner_key_secrets", "partner_key_changes"):
            rows += (await conn.execute(text(f"SELECT * FROM {table}"))).all()
    dump = " ".join(str(row) for row in rows)
    assert secret not in dump and secret[12:] not in dump and rules.secret_hash(secret) in dump


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("expire_time", None),
        ("expire_time", timedelta(days=3 * 365)),
        ("expire_time", timedelta(days=-1)),
        ("scopes", []),
        ("scopes", ["leads.admin"]),
        ("scopes", ["leads.NoSuchMethod"]),
        ("allowed_cidrs", ["10.0.0.0/33"]),
        ("rate_limit_per_minute", 100_000),
        ("org_path", "../east"),
    ],
)
async def test_refused_keys(world: World, field: str, value: Any) -> None:
    key = new_key()
    if field == "expire_time":
        key.ClearField("expire_time")
        if value is not None:
            key.expire_time.CopyFrom(ts(datetime.now(UTC) + value))
    elif isinstance(value, list):
        key.ClearField(field)  # type: ignore[arg-type]
        getattr(key, field).extend(value)
    else:
        setattr(key, field, value)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await create(world, key)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = [
        v.field
        for d in status_from_error(err.value).details
        if d.Is(error_details_pb2.BadRequest.DESCRIPTOR)
        for v in (lambda b: (d.Unpack(b), b)[1])(error_details_pb2.BadRequest()).field_violations
    ]
    assert f"partner_key.{field}" in violations


async def test_exchange_mints_a_scoped_token_the_services_verify(world: World) -> None:
    key, secret = await create(world, new_key(org_path="east"))
    answer = await world.exchange(secret)
    assert answer.token_type == "Bearer" and list(answer.scopes) == ["integration.read", "leads.read"]
    lifetime = answer.expire_time.ToDatetime(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(minutes=13) < lifetime <= timedelta(minutes=15)
    who = TokenVerifier(CONFIG).verify(answer.access_token)
    assert (who.user_id, who.tenant, set(who.roles), who.org) == (
        f"partner:{key.key_id}",
        "demo",
        {"partner"},
        "east",
    )
    assert who.partner_key_id == key.key_id and who.rate_limit_per_minute == 600
    me = await world.nodes[1].whoami(answer.access_token)  # any process of any service
    assert me.user_id == f"partner:{key.key_id}"
    narrowed = await world.exchange(secret, "leads.read")
    assert list(narrowed.scopes) == ["leads.read"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.exchange(secret, "leads.write")
    assert refusal(err) == (grpc.StatusCode.PERMISSION_DENIED, "SCOPE_NOT_GRANTED")
    # The token reaches what its scopes grant and nothing else; past the gate the service's rules apply.
    md = (("authorization", f"Bearer {narrowed.access_token}"),)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.nodes[0].stub.ListPartnerKeys(pb.ListPartnerKeysRequest(), metadata=md, timeout=10)
    assert refusal(err) == (grpc.StatusCode.PERMISSION_DENIED, "SCOPE_NOT_GRANTED")
    md = (("authorization", f"Bearer {answer.access_token}"),)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.nodes[0].stub.ListPartnerKeys(pb.ListPartnerKeysRequest(), metadata=md, timeout=10)
    assert refusal(err) == (grpc.StatusCode.PERMISSION_DENIED, "ADMIN_ONLY")
    got = await world.admin("GetPartnerKey", pb.GetPartnerKeyRequest(key_id=key.key_id))
    assert got.partner_key.HasField("last_used_time")


async def test_garbage_unknown_and_expired_secrets_are_refused(world: World) -> None:
    key, secret = await create(world)
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    unknown = rules.new_secret(live=False)  # well-formed, never issued
    for bad in ("", "hello", tampered, unknown, "so_live_" + secret[8:]):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await world.exchange(bad)
        assert refusal(err) == (grpc.StatusCode.UNAUTHENTICATED, "PARTNER_SECRET_INVALID"), bad
    async with world.db.session("demo") as session:
        await session.execute(
            update(PartnerKeyRow).values(expire_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.exchange(secret)
    assert refusal(err) == (grpc.StatusCode.UNAUTHENTICATED, "PARTNER_KEY_EXPIRED")
    listed = await world.admin(
        "ListPartnerKeys", pb.ListPartnerKeysRequest(state=p.PARTNER_KEY_STATE_EXPIRED)
    )
    assert [k.key_id for k in listed.partner_keys] == [key.key_id]
    active = await world.admin("ListPartnerKeys", pb.ListPartnerKeysRequest(state=p.PARTNER_KEY_STATE_ACTIVE))
    assert list(active.partner_keys) == []


async def test_revocation_refuses_live_tokens_within_seconds_everywhere(world: World) -> None:
    key, secret = await create(world)
    access = (await world.exchange(secret)).access_token
    for node in world.nodes:
        await node.whoami(access)
    revoked = await world.admin(
        "RevokePartnerKey", pb.RevokePartnerKeyRequest(key_id=key.key_id, reason="contract ended")
    )
    started = time.monotonic()
    assert revoked.partner_key.state == p.PARTNER_KEY_STATE_REVOKED
    assert revoked.partner_key.revoked_by == "admin" and revoked.partner_key.revoke_reason == "contract ended"
    for node in world.nodes:  # the token is still unexpired: Redis is what refuses it
        while True:
            try:
                await node.whoami(access)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
                break
            assert time.monotonic() - started < 5, "a revoked key's token still works"
            await asyncio.sleep(0.05)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.exchange(secret)
    assert refusal(err)[0] == grpc.StatusCode.UNAUTHENTICATED
    again = await world.admin(
        "RevokePartnerKey", pb.RevokePartnerKeyRequest(key_id=key.key_id, reason="twice")
    )
    assert again.partner_key.revoke_reason == "contract ended"  # revoking twice changes nothing
    async with world.db.engine.connect() as conn:
        types = (await conn.execute(select(outbox.c.type))).scalars().all()
    assert types.count("integration.PartnerKeyRevoked") == 1
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.admin("RotatePartnerKey", pb.RotatePartnerKeyRequest(key_id=key.key_id))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_rotation_keeps_the_previous_secret_for_the_overlap_only(world: World) -> None:
    key, first = await create(world)
    rotated = await world.admin(
        "RotatePartnerKey",
        pb.RotatePartnerKeyRequest(key_id=key.key_id, previous_secret_grace=Duration(seconds=3600)),
    )
    second = rotated.secret
    assert rules.looks_like_secret(second) and second != first
    assert rotated.partner_key.key_prefix == second[:12]
    ends = rotated.partner_key.previous_secret_expire_time.ToDatetime(tzinfo=UTC)
    assert timedelta(minutes=59) < ends - datetime.now(UTC) <= timedelta(hours=1)
    await world.exchange(first)  # within the overlap, both work
    await world.exchange(second)
    async with world.db.session("demo") as session:  # the overlap ends
        await session.execute(
            update(PartnerKeySecretRow)
            .where(PartnerKeySecretRow.secret_hash == rules.secret_hash(first))
            .values(valid_until=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.exchange(first)
    assert refusal(err) == (grpc.StatusCode.UNAUTHENTICATED, "PARTNER_SECRET_INVALID")
    await world.exchange(second)
    third = (
        await world.admin(
            "RotatePartnerKey",
            pb.RotatePartnerKeyRequest(key_id=key.key_id, previous_secret_grace=Duration()),
        )
    ).secret
    with pytest.raises(grpc.aio.AioRpcError):
        await world.exchange(second)  # grace 0: the previous secret ends at once
    await world.exchange(third)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.admin(
            "RotatePartnerKey",
            pb.RotatePartnerKeyRequest(key_id=key.key_id, previous_secret_grace=Duration(seconds=8 * 86400)),
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_rate_limit_is_per_key_across_processes(world: World) -> None:
    _, secret = await create(world, new_key(rate_limit_per_minute=6))
    _, other = await create(world, new_key("01JPK0000000000000000000B2", rate_limit_per_minute=6))
    access = (await world.exchange(secret)).access_token  # 1
    for n in range(5):  # 2..6, alternating between the two processes
        await world.nodes[n % 2].whoami(access)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.nodes[1].whoami(access)
    assert refusal(err) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "PARTNER_RATE_LIMITED")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.exchange(secret, node=1)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    await world.nodes[0].whoami((await world.exchange(other)).access_token)  # another key: its own budget


async def test_addresses_outside_the_ranges_are_refused(world: World) -> None:
    _, secret = await create(world, new_key(allowed_cidrs=["203.0.113.0/24"]))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.exchange(secret)
    assert refusal(err) == (grpc.StatusCode.PERMISSION_DENIED, "PARTNER_ADDRESS_REFUSED")
    _, local = await create(
        world, new_key("01JPK0000000000000000000C3", allowed_cidrs=["127.0.0.0/8", "::1/128"])
    )
    await world.exchange(local)


async def test_updates_are_audited_admins_only_and_tenant_scoped(world: World) -> None:
    key, secret = await create(world)
    updated = await world.admin(
        "UpdatePartnerKey",
        pb.UpdatePartnerKeyRequest(
            partner_key=p.PartnerKey(key_id=key.key_id, scopes=["leads.read"], etag=key.etag),
            update_mask=FieldMask(paths=["scopes"]),
        ),
    )
    assert list(updated.partner_key.scopes) == ["leads.read"] and updated.partner_key.etag != key.etag
    assert list((await world.exchange(secret)).scopes) == ["leads.read"]  # narrowed for new tokens
    with pytest.raises(grpc.aio.AioRpcError) as err:  # a stale etag
        await world.admin(
            "UpdatePartnerKey",
            pb.UpdatePartnerKeyRequest(
                partner_key=p.PartnerKey(key_id=key.key_id, display_name="x", etag=key.etag),
                update_mask=FieldMask(paths=["display_name"]),
            ),
        )
    assert err.value.code() == grpc.StatusCode.ABORTED
    with pytest.raises(grpc.aio.AioRpcError) as err:  # expiry stays mandatory
        await world.admin(
            "UpdatePartnerKey",
            pb.UpdatePartnerKeyRequest(
                partner_key=p.PartnerKey(key_id=key.key_id), update_mask=FieldMask(paths=["expire_time"])
            ),
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await world.admin("RotatePartnerKey", pb.RotatePartnerKeyRequest(key_id=key.key_id))
    await world.admin("RevokePartnerKey", pb.RevokePartnerKeyRequest(key_id=key.key_id, reason="done"))
    async with world.db.session("demo") as session:
        changes = list(
            await session.scalars(select(PartnerKeyChangeRow).order_by(PartnerKeyChangeRow.change_id))
        )
    assert [(c.action, c.changed_by) for c in changes] == [
        ("create", "admin"),
        ("update", "admin"),
        ("rotate", "admin"),
        ("revoke", "admin"),
    ]
    assert changes[1].fields == "scopes" and changes[3].reason == "done"
    for method, request in (
        ("GetPartnerKey", pb.GetPartnerKeyRequest(key_id=key.key_id)),
        ("RevokePartnerKey", pb.RevokePartnerKeyRequest(key_id=key.key_id, reason="x")),
        ("RotatePartnerKey", pb.RotatePartnerKeyRequest(key_id=key.key_id)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await world.admin(method, request, tenant="acme")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND, method
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await world.admin(method, request, user="rep-a1")
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, method
    listed = await world.admin("ListPartnerKeys", pb.ListPartnerKeysRequest(), tenant="acme")
    assert list(listed.partner_keys) == []
