"""Partner tokens in leads' access rules, over real gRPC with the Redis guard (docs/security.md):
a partner acts tenant-wide within its scopes, writes as ``partner:<key id>``, and reaches admin-only
configuration only through that method's own scope, never through ``leads.write``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.rpc import error_details_pb2

from deploy.local.infra import free_port
from kit.auth import TokenVerifier
from kit.config import GrpcSettings
from kit.db import Database
from kit.grpc.errors import status_from_error
from kit.grpc.partners import PartnerGuard
from kit.grpc.server import GrpcServer
from kit.migrations import upgrade_to_head
from salesops.leads.v1 import enums_pb2, leads_service_pb2_grpc
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads import api
from tests.leads.conftest import CONFIG, MINTER, token
from tests.leads.helpers import configure, hot_lead

KEY = "01JPARTNERKEY0000000000LDS"


def partner(*scopes: str) -> tuple[tuple[str, str], ...]:
    bearer = MINTER.mint(
        f"partner:{KEY}", "demo", ["partner"], scopes=scopes, extra={"pkid": KEY, "rpm": 6000}
    )
    return (("authorization", f"Bearer {bearer}"),)


def user(name: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token(name)}"),)


def reason(err: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> tuple[grpc.StatusCode, str]:
    for detail in status_from_error(err.value).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return err.value.code(), str(info.reason)
    return err.value.code(), ""


@pytest.fixture
async def stub(database_url: str, redis_url: str) -> AsyncIterator[Any]:
    db = Database(database_url, pool_size=10)
    await upgrade_to_head("leads", db)
    redis = aioredis.Redis.from_url(redis_url)
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
    server = GrpcServer(
        "leads",
        settings,
        TokenVerifier(CONFIG),
        api.registrations(rt),  # type: ignore[arg-type]
        partners=PartnerGuard(redis),
    )
    await server.start()
    channel = grpc.aio.insecure_channel(server.address)
    try:
        yield leads_service_pb2_grpc.LeadsServiceStub(channel)
    finally:
        await channel.close(None)
        await server.stop(0)
        await redis.aclose()
        await db.dispose()


async def test_a_read_scoped_partner_sees_the_tenant(stub: Any) -> None:
    async def as_admin(method: str, request: Any) -> Any:
        return await getattr(stub, method)(request, metadata=user("admin"), timeout=30)

    await configure(SimpleNamespace(call=as_admin))  # routing: hot east leads -> a rep of team A
    owned = await as_admin("CreateLead", pb.CreateLeadRequest(lead=hot_lead("L-REP")))
    assert owned.lead.owner_user_id.startswith("rep-a")  # a rep's lead, in a team the partner is not in
    read = partner("leads.read")
    listed = await stub.ListLeads(pb.ListLeadsRequest(), metadata=read, timeout=30)
    assert [lead.lead_id for lead in listed.leads] == ["L-REP"]
    got = await stub.GetLead(pb.GetLeadRequest(lead_id="L-REP"), metadata=read, timeout=30)
    assert got.lead.lead_id == "L-REP"
    with pytest.raises(grpc.aio.AioRpcError) as err:  # outside its scopes
        await stub.CreateLead(pb.CreateLeadRequest(lead=hot_lead("L-NO")), metadata=read, timeout=30)
    assert reason(err) == (grpc.StatusCode.PERMISSION_DENIED, "SCOPE_NOT_GRANTED")


async def test_a_partner_write_is_attributed_to_its_key(stub: Any) -> None:
    lead = hot_lead("L-PARTNER", phone="13800000077", channel=enums_pb2.LEAD_CHANNEL_PARTNER_API)
    made = await stub.CreateLead(
        pb.CreateLeadRequest(lead=lead), metadata=partner("leads.CreateLead"), timeout=30
    )
    assert made.lead.lead_id == "L-PARTNER"
    assert made.lead.audit.created_by == f"partner:{KEY}"
    admin = await stub.GetLead(pb.GetLeadRequest(lead_id="L-PARTNER"), metadata=user("admin"), timeout=30)
    assert admin.lead.audit.created_by == f"partner:{KEY}"


async def test_admin_configuration_needs_the_methods_own_scope(stub: Any) -> None:
    request = pb.SimulateRoutingRequest(region="east/shanghai", grade=enums_pb2.LEAD_GRADE_A)
    with pytest.raises(grpc.aio.AioRpcError) as err:  # leads.write passes the gate, not the rule
        await stub.SimulateRouting(request, metadata=partner("leads.write"), timeout=30)
    assert reason(err) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_ADMIN")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.UpdateRoutingRules(
            pb.UpdateRoutingRulesRequest(), metadata=partner("leads.write"), timeout=30
        )
    assert reason(err) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_ADMIN")
    named = await stub.SimulateRouting(request, metadata=partner("leads.SimulateRouting"), timeout=30)
    assert named.decision.summary  # answered: the method's own scope opens it
