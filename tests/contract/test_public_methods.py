"""The server pipeline's per-method public flag and partner scope gate, on real gRPC servers.

Public is narrow and explicit: a Registration names methods of its own contract, matched
exactly; across every service only IngestWebhook and ExchangePartnerKey are public.
Partner tokens reach only the methods their scopes grant, and never without the Redis guard.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.rpc import error_details_pb2

from deploy.local.infra import free_port
from kit.auth import AuthConfig, TokenMinter, TokenVerifier
from kit.config import SERVICES, Settings
from kit.db import Database
from kit.grpc import diagnostics
from kit.grpc.errors import status_from_error
from kit.grpc.partners import PartnerGuard
from kit.grpc.scopes import MethodScopes
from kit.grpc.server import GrpcServer, Registration, public_methods
from kit.runtime import Runtime, ServiceSpec
from salesops.common.v1 import diagnostics_pb2, diagnostics_pb2_grpc
from salesops.integration.v1 import integration_service_pb2
from salesops.leads.v1 import leads_service_pb2  # noqa: F401  (its descriptors, for MethodScopes)
from services.integration import api
from tests.integration.conftest import grpc_settings

CONFIG = AuthConfig.from_env({})
MINTER = TokenMinter(CONFIG)
SERVICE = "salesops.integration.v1.IntegrationService"
PUBLIC = {f"/{SERVICE}/IngestWebhook", f"/{SERVICE}/ExchangePartnerKey"}


def reason(err: grpc.aio.AioRpcError) -> str:
    for detail in status_from_error(err).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


def partner(*scopes: str, pkid: str | None = "01JPARTNERKEY0000000000000") -> str:
    extra: dict[str, Any] = {"rpm": 600}
    if pkid:
        extra["pkid"] = pkid
    return MINTER.mint("partner:k", "demo", ["partner"], scopes=scopes, extra=extra)


@pytest.fixture
async def server(sqlite_url: str, redis_url: str) -> AsyncIterator[GrpcServer]:
    redis = aioredis.Redis.from_url(redis_url)
    guard = PartnerGuard(redis)
    db = Database(sqlite_url)
    rt: Any = SimpleNamespace(db=db, auth_config=CONFIG, partners=guard)
    srv = GrpcServer(
        "integration", grpc_settings(), TokenVerifier(CONFIG), api.registrations(rt), partners=guard
    )
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop(0)
        await db.dispose()
        await redis.aclose()


async def call(
    srv: GrpcServer, path: str, token: str | None = None, body: bytes = b""
) -> grpc.aio.AioRpcError | None:
    md = (("authorization", f"Bearer {token}"),) if token else ()
    async with grpc.aio.insecure_channel(srv.address) as channel:
        raw: Any = channel.unary_unary(path)  # type: ignore[call-arg]  # bytes in, bytes out
        try:
            await raw(body, metadata=md, timeout=10)
        except grpc.aio.AioRpcError as err:
            return err
    return None


def test_every_service_makes_public_only_the_two_credential_carrying_methods(
    sqlite_url: str, redis_url: str
) -> None:
    found: set[str] = set()
    for area in SERVICES:
        spec: ServiceSpec = importlib.import_module(f"services.{area}.app").SPEC
        base = Settings.from_env(area)
        settings = replace(
            base,
            database_url=sqlite_url,
            redis_url=redis_url,
            grpc=replace(base.grpc, listen=f"127.0.0.1:{free_port()}"),
        )
        found |= public_methods(spec.servicers(Runtime(settings)))
    assert found == PUBLIC


def test_a_registration_may_name_only_methods_of_its_contract() -> None:
    add = diagnostics_pb2_grpc.add_DiagnosticsServiceServicer_to_server
    name = diagnostics_pb2.DESCRIPTOR.services_by_name["DiagnosticsService"].full_name
    for bad in ({"Whoami"}, {"WhoAmI2"}, {"/salesops.common.v1.DiagnosticsService/WhoAmI"}, {""}):
        reg = Registration(add, diagnostics.Diagnostics("x"), name, public_methods=frozenset(bad))
        with pytest.raises(ValueError, match="unknown methods"):
            GrpcServer("x", grpc_settings(), TokenVerifier(CONFIG), [reg])
    grouped = Registration(add, diagnostics.Diagnostics("x"), name, scope_groups={"x.y": frozenset({"Nope"})})
    with pytest.raises(ValueError, match="unknown methods"):
        GrpcServer("x", grpc_settings(), TokenVerifier(CONFIG), [grouped])


async def test_without_a_token_every_other_method_is_refused(server: GrpcServer) -> None:
    assert server.pipeline.public == PUBLIC
    contract = integration_service_pb2.DESCRIPTOR.services_by_name["IntegrationService"]
    paths = [f"/{SERVICE}/{m.name}" for m in contract.methods] + [
        "/salesops.common.v1.DiagnosticsService/WhoAmI"
    ]
    for path in paths:
        err = await call(server, path)
        assert err is not None, path
        if path in PUBLIC:
            assert reason(err) != "MISSING", path  # reached the servicer, which judged the request
        else:
            assert (err.code(), reason(err)) == (grpc.StatusCode.UNAUTHENTICATED, "MISSING"), path
    ingest = await call(server, f"/{SERVICE}/IngestWebhook")
    assert ingest is not None and ingest.code() == grpc.StatusCode.INVALID_ARGUMENT  # no tenant
    exchange = await call(server, f"/{SERVICE}/ExchangePartnerKey")
    assert exchange is not None and reason(exchange) == "PARTNER_SECRET_INVALID"
    # Exact names only: no prefix, case or suffix variant of a public method is served.
    for path in (f"/{SERVICE}/IngestWebhookX", f"/{SERVICE}/ingestwebhook", f"/{SERVICE}X/IngestWebhook"):
        err = await call(server, path)
        assert err is not None and err.code() == grpc.StatusCode.UNIMPLEMENTED, path


async def test_a_bearer_on_a_public_method_grants_nothing_and_is_not_read(server: GrpcServer) -> None:
    err = await call(server, f"/{SERVICE}/IngestWebhook", token="not-even-a-jwt")
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_partner_tokens_reach_only_what_their_scopes_grant(server: GrpcServer) -> None:
    who = "/salesops.common.v1.DiagnosticsService/WhoAmI"
    assert await call(server, who, partner("leads.read")) is None  # scope-free: a caller asking about itself

    def judged(err: grpc.aio.AioRpcError | None) -> str:
        return "ok" if err is None else reason(err)

    get = f"/{SERVICE}/GetPartnerKey"  # a GET: integration.read grants it
    create = f"/{SERVICE}/CreatePartnerKey"
    stock = f"/{SERVICE}/CheckStock"
    # Past the gate, the servicer's own rule (admins only) answers: the scope let it through.
    assert judged(await call(server, get, partner("integration.read"))) == "ADMIN_ONLY"
    assert judged(await call(server, get, partner("integration.GetPartnerKey"))) == "ADMIN_ONLY"
    assert judged(await call(server, create, partner("integration.write"))) == "ADMIN_ONLY"
    assert judged(await call(server, create, partner("integration.read"))) == "SCOPE_NOT_GRANTED"
    assert judged(await call(server, get, partner("leads.read", "leads.write"))) == "SCOPE_NOT_GRANTED"
    assert judged(await call(server, get, partner("integration.GetPartnerKeys"))) == "SCOPE_NOT_GRANTED"
    assert judged(await call(server, get, partner("integration.stock"))) == "SCOPE_NOT_GRANTED"
    assert judged(await call(server, stock, partner("integration.stock"))) != "SCOPE_NOT_GRANTED"
    assert judged(await call(server, get, partner())) == "SCOPE_NOT_GRANTED"  # no scope, nothing
    assert judged(await call(server, who, partner("integration.read", pkid=None))) == "INVALID_CLAIM"
    # A user's or service's token is not scoped by the gate: its roles decide.
    admin = MINTER.mint("admin", "demo", ["admin"])
    assert judged(await call(server, get, admin)) != "SCOPE_NOT_GRANTED"


async def test_partner_tokens_are_refused_where_no_guard_can_check_them() -> None:
    srv = GrpcServer("x", grpc_settings(), TokenVerifier(CONFIG), [diagnostics.registration("x")])
    await srv.start()
    try:
        err = await call(srv, "/salesops.common.v1.DiagnosticsService/WhoAmI", partner("leads.read"))
        assert err is not None and reason(err) == "PARTNER_TOKENS_OFF"
        assert (
            await call(
                srv, "/salesops.common.v1.DiagnosticsService/WhoAmI", MINTER.mint("u", "demo", ["rep"])
            )
            is None
        )
    finally:
        await srv.stop(0)


def test_method_scopes_from_the_contract() -> None:
    scopes = MethodScopes({"leads.intake": {"/salesops.leads.v1.LeadsService/CreateLead"}})
    get = scopes.granting("/salesops.leads.v1.LeadsService/GetLead")
    assert get == {"leads.GetLead", "leads.read", "leads.write"}
    create = scopes.granting("/salesops.leads.v1.LeadsService/CreateLead")
    assert create == {"leads.CreateLead", "leads.write", "leads.intake"}
    assert scopes.allows(frozenset({"leads.read"}), "/salesops.leads.v1.LeadsService/GetLead")
    assert not scopes.allows(frozenset({"leads.read"}), "/salesops.leads.v1.LeadsService/CreateLead")
    assert not scopes.allows(frozenset({"pipeline.write"}), "/salesops.leads.v1.LeadsService/GetLead")
