"""OWASP API9 (improper inventory management): what is exposed is exactly what is documented.

The inventory is the generated contract: every service area with a
`salesops.<area>.v1.<area>_service_pb2` (kit.events.streams.service_areas) plus the
diagnostics service. Checked here, each against an independent reading of it:

- every RPC with a `google.api.http` rule is an operation of /openapi.json, and every
  operation there is such an RPC or one of the gateway's own (batch, health);
- the running gateway routes exactly the documented (method, path) pairs, nothing under
  another API version, no debug or framework path: all of those are 404 JSON Statuses;
- every service registers exactly its contract's RPCs, each served by the servicer or
  answering UNIMPLEMENTED, with no extra method or service (channelz, debug) on the port,
  and what server reflection lists (in embedded mode) is that same inventory.

Reflection is off in production settings: tests/security/test_api8_misconfiguration.py
(test_reflection_is_off_in_production) holds that, so it is not repeated here.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any

import grpc
import httpx
import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from deploy.local.infra import free_port
from gateway.bounds import RequestBounds
from kit.auth import AuthConfig, TokenMinter
from kit.config import Settings
from kit.events.streams import service_areas
from kit.grpc.server import GrpcServer, Registration
from kit.runtime import Runtime, ServiceSpec
from tests.gateway.conftest import Running, running_gateway

MINTER = TokenMinter(AuthConfig.from_env({}))
DIAGNOSTICS = "salesops.common.v1.diagnostics_pb2"
# The gateway's own operations, listed in /openapi.json on purpose (gateway/app.py, gateway/openapi.py).
GATEWAY_OPERATIONS = {("POST", "/v1/sync:batch"), ("GET", "/healthz"), ("GET", "/readyz")}
# Served on purpose and not operations: the description itself and its viewer (Swagger UI's files).
GATEWAY_PAGES = {"/openapi.json", "/docs"}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PROBE_METHODS = (*METHODS, "OPTIONS", "TRACE")


def bearer(roles: tuple[str, ...] = ("admin",), tenant: str = "demo") -> str:
    return MINTER.mint("admin-1", tenant, list(roles), org="")


# ------------------------------------------------------------------ the inventory, read independently


def contract_services() -> list[ServiceDescriptor]:
    modules = [f"salesops.{a}.v1.{a}_service_pb2" for a in service_areas()] + [DIAGNOSTICS]
    return [s for m in modules for s in importlib.import_module(m).DESCRIPTOR.services_by_name.values()]


def _bindings(rule: http_pb2.HttpRule) -> Iterator[http_pb2.HttpRule]:
    yield rule
    for extra in rule.additional_bindings:
        yield from _bindings(extra)


def shape(path: str) -> str:
    """`/v1/leads/{lead.lead_id}:claim` and `/v1/leads/{lead_id}:claim` -> `/v1/leads/{}:claim`."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def annotated_rpcs() -> dict[tuple[str, str], str]:
    """(HTTP method, path shape) -> `Service.Method`, for every binding of every annotated RPC."""
    out: dict[tuple[str, str], str] = {}
    for service in contract_services():
        for method in service.methods:
            options = method.GetOptions()
            if method.client_streaming or not options.HasExtension(annotations_pb2.http):
                continue
            for rule in _bindings(options.Extensions[annotations_pb2.http]):
                kind = rule.WhichOneof("pattern")
                if kind is None:
                    continue
                verb, path = (
                    (rule.custom.kind, rule.custom.path) if kind == "custom" else (kind, getattr(rule, kind))
                )
                key = (verb.upper(), shape(path))
                assert key not in out, f"{method.full_name} and {out[key]} share {key}"
                out[key] = f"{service.name}.{method.name}"
    return out


def documented(doc: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(HTTP method, path shape) -> summary, for every operation of /openapi.json."""
    return {
        (verb.upper(), shape(path)): op.get("summary", "")
        for path, item in doc["paths"].items()
        for verb, op in item.items()
        if verb.upper() in METHODS
    }


def template_regex(path: str) -> re.Pattern[str]:
    """google.api.http semantics: a `{var}` is one path segment."""
    parts = re.split(r"(\{[^}]*\})", path)
    return re.compile("^" + "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$")


def sample(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "x1", path)


# ------------------------------------------------------------------ the gateway


@pytest.fixture
async def gw(redis_url: str) -> AsyncIterator[Running]:
    # Probing every route unauthenticated counts against the client address: lift that limit here.
    bounds = replace(RequestBounds(), address_limit=1_000_000)
    async with running_gateway(redis_url, bounds=bounds) as running:
        yield running


async def _openapi(gw: Running) -> dict[str, Any]:
    r = await gw.client.get("/openapi.json")
    assert r.status_code == 200
    doc: dict[str, Any] = r.json()
    return doc


def assert_status_json(r: httpx.Response, code: int) -> None:
    assert r.headers["content-type"].startswith("application/json"), (r.request.url, r.text[:80])
    body = r.json()
    assert body["code"] == code and isinstance(body["message"], str), body


async def test_every_rest_rpc_is_documented_and_every_operation_is_an_rpc(gw: Running) -> None:
    doc = await _openapi(gw)
    rpcs, operations = annotated_rpcs(), documented(doc)
    assert len(rpcs) > 200
    undocumented = sorted(set(rpcs) - set(operations))
    assert not undocumented, f"served over REST but not in /openapi.json: {undocumented[:10]}"
    unknown = sorted(set(operations) - set(rpcs) - GATEWAY_OPERATIONS)
    assert not unknown, f"in /openapi.json but no RPC of the contract: {unknown[:10]}"
    for key, rpc in rpcs.items():
        assert operations[key] == rpc, f"{key} is documented as {operations[key]}, served by {rpc}"
    # The gateway's own operations are there too, and nothing is documented outside /v1.
    assert set(operations) >= GATEWAY_OPERATIONS
    outside = {p for p in doc["paths"] if not p.startswith("/v1/")}
    assert outside == {"/healthz", "/readyz"}, outside


async def test_the_gateway_routes_exactly_the_documented_operations(gw: Running) -> None:
    """Every documented (method, path) is routed (401 without a token: nothing else is read first);
    every other method on the same paths is refused as unrouted (404/405), never passed on."""
    doc = await _openapi(gw)
    templates = [(verb.upper(), template_regex(p)) for p, item in doc["paths"].items() for verb in item]
    # kit.grpc.public's methods (documented with no security) are forwarded without a token.
    public = {
        (verb.upper(), p)
        for p, item in doc["paths"].items()
        for verb, op in item.items()
        if op.get("security") == []
    }
    routed = 0
    for path in doc["paths"]:
        concrete = sample(path)
        for verb in PROBE_METHODS:
            r = await gw.client.request(verb, concrete)
            expected = any(v == verb and rx.match(concrete) for v, rx in templates)
            if (verb, path) in {("GET", "/healthz"), ("GET", "/readyz")}:
                assert r.status_code in (200, 503), (verb, concrete, r.status_code)
            elif (verb, path) in public:
                routed += 1
                assert r.status_code != 401, (verb, concrete, r.status_code, r.text[:80])
            elif expected:
                routed += 1
                assert r.status_code == 401, (verb, concrete, r.status_code, r.text[:80])
                assert_status_json(r, grpc.StatusCode.UNAUTHENTICATED.value[0])
            else:
                assert r.status_code in (404, 405), (verb, concrete, r.status_code, r.text[:80])
                assert_status_json(r, 12 if r.status_code == 405 else 5)
    assert routed >= len(annotated_rpcs())
    for page in GATEWAY_PAGES:
        assert (await gw.client.get(page)).status_code == 200, page
        r = await gw.client.post(page)
        assert r.status_code == 405 and "GET" in r.headers["allow"], (page, r.status_code)
        assert_status_json(r, grpc.StatusCode.UNIMPLEMENTED.value[0])


async def test_the_docs_pages_serve_their_files_and_nothing_else(gw: Running) -> None:
    """Only Swagger UI's own files: no listing, no redirect guessing a route, no way out of the folder."""
    assert (await gw.client.get("/docs/static/swagger-ui.css")).status_code == 200
    for path in (
        "/docs/",
        "/docs/x",
        "/docs/static",
        "/docs/static/",
        "/docs/static/index.html",
        "/docs/static/%2e%2e/%2e%2e/gateway/app.py",
        "/docs/static/..%2f..%2fapp.py",
        "/openapi.json/",
        "/healthz/",
    ):
        r = await gw.client.get(path)
        assert r.status_code == 404, (path, r.status_code, r.headers.get("location"))
        assert_status_json(r, grpc.StatusCode.NOT_FOUND.value[0])


HIDDEN = [
    "/",
    "/metrics",
    "/debug",
    "/debug/vars",
    "/debug/pprof/",
    "/admin",
    "/internal/leads",
    "/status",
    "/health",
    "/.env",
    "/.git/config",
    "/server-status",
    "/actuator/health",
    "/graphql",
    "/swagger.json",
    "/swagger-ui.html",
    "/redoc",
    "/openapi.yaml",
    "/docs.json",
    "/api/v1/leads",
    "/v1",
    "/v1/",
    "/v1/openapi.json",
    "/v1/debug",
    "/v1/admin/flush",
    "/v1/healthz",
    "/v1/leads:debug",
    "/v1/leads:export",
    "/v1/sync",
    "/salesops.leads.v1.LeadsService/GetLead",  # a gRPC method path over HTTP/1.1
    "/salesops.common.v1.DiagnosticsService/WhoAmI",
    "/grpc.health.v1.Health/Check",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
]
OTHER_VERSIONS = [
    "/v0/leads",
    "/v2/leads",
    "/v2/leads/x1",
    "/v2/leads/x1:claim",
    "/v1beta1/leads",
    "/v1alpha/leads",
    "/V1/leads",
    "/v1.1/leads",
    "/v2/sync:batch",
    "/v2/inbox:stream",
    "/v2/whoami",
    "/latest/leads",
]


@pytest.mark.parametrize("paths", [HIDDEN, OTHER_VERSIONS], ids=["hidden", "versions"])
async def test_paths_outside_the_inventory_are_404_statuses(gw: Running, paths: list[str]) -> None:
    """With or without a valid admin token: nothing reaches a backend, the answer is a JSON Status."""
    token = {"Authorization": f"Bearer {bearer()}"}
    for path in paths:
        for verb in ("GET", "POST", "DELETE"):
            for headers in ({}, token):
                r = await gw.client.request(verb, path, headers=headers, json={} if verb == "POST" else None)
                assert r.status_code == 404, (verb, path, r.status_code, r.text[:80])
                assert_status_json(r, grpc.StatusCode.NOT_FOUND.value[0])
    assert gw.leads.metadata == []  # the leads backend (it records every call) saw none of it


# ------------------------------------------------------------------ the gRPC services


class Recorder:
    """Stands in for a grpc.aio.Server while `add_XServicer_to_server` registers its handlers."""

    def __init__(self) -> None:
        self.methods: dict[str, set[str]] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        for handler in handlers:
            self._add(handler.service_name(), handler._method_handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self._add(service, handlers)

    def _add(self, service: str, names: Any) -> None:
        # Keys are `Method` or `/package.Service/Method` depending on the grpcio version.
        prefix = f"/{service}/"
        found = {n.removeprefix(prefix) if n.startswith(prefix) else n for n in names}
        self.methods.setdefault(service, set()).update(found)


def service_named(full_name: str) -> ServiceDescriptor:
    return next(s for s in contract_services() if s.full_name == full_name)


def generated_base(servicer: Any) -> type:
    """The `XServicer` class of the generated stubs that `servicer` extends."""
    return next(c for c in type(servicer).__mro__ if c.__module__.endswith("_pb2_grpc"))


def overridden(servicer: Any, method: MethodDescriptor) -> bool:
    return getattr(type(servicer), method.name) is not getattr(generated_base(servicer), method.name)


@dataclass
class Served:
    server: GrpcServer
    registrations: list[Registration]


@pytest.fixture
async def served(request: pytest.FixtureRequest, sqlite_url: str, redis_url: str) -> AsyncIterator[Served]:
    """One service's own registrations (its SPEC), behind the real pipeline, reflection on as in dev."""
    area: str = request.param
    spec: ServiceSpec = importlib.import_module(f"services.{area}.app").SPEC
    base = Settings.from_env(area)
    settings = replace(
        base,
        database_url=sqlite_url,
        redis_url=redis_url,
        grpc=replace(base.grpc, listen=f"127.0.0.1:{free_port()}", reflection=True, grace_seconds=0.5),
    )
    rt = Runtime(settings)
    registrations = spec.servicers(rt)
    server = GrpcServer(area, settings.grpc, rt.verifier, registrations)
    await server.start()
    try:
        yield Served(server, registrations)
    finally:
        for reg in registrations:
            hub = getattr(reg.servicer, "hub", None)
            if hub is not None:
                await hub.stop()
        await server.stop(0)
        await rt.close()


AREAS = service_areas()


@pytest.mark.parametrize("served", AREAS, indirect=True, ids=AREAS)
async def test_each_service_registers_its_contract_and_nothing_else(served: Served) -> None:
    area = served.server.service
    expected = {f"salesops.{area}.v1.{area.capitalize()}Service", "salesops.common.v1.DiagnosticsService"}
    assert {r.name for r in served.registrations} == expected
    for reg in served.registrations:
        recorder = Recorder()
        reg.add(reg.servicer, recorder)
        contract = service_named(reg.name)
        assert recorder.methods == {reg.name: {m.name for m in contract.methods}}, reg.name
        # No RPC-looking method on the servicer beyond the contract (a debug hook waiting for wiring).
        base = generated_base(reg.servicer)
        extra = {
            name
            for klass in type(reg.servicer).__mro__
            if klass not in (base, object) and not klass.__module__.endswith("_pb2_grpc")
            for name, value in vars(klass).items()
            if name[:1].isupper() and callable(value) and name not in contract.methods_by_name
        }
        assert not extra, f"{reg.name}: servicer methods outside the contract: {sorted(extra)}"


@pytest.mark.parametrize("served", AREAS, indirect=True, ids=AREAS)
async def test_every_rpc_is_served_or_unimplemented_and_nothing_hides_on_the_port(served: Served) -> None:
    metadata = (("authorization", f"Bearer {bearer()}"),)
    async with grpc.aio.insecure_channel(served.server.address) as channel:
        for reg in served.registrations:
            for method in service_named(reg.name).methods:
                if overridden(reg.servicer, method):
                    continue  # served by the servicer: its own suites call it
                path = f"/{reg.name}/{method.name}"
                if method.server_streaming:
                    stream = channel.unary_stream(path)(b"", metadata=metadata, timeout=5)
                    with pytest.raises(grpc.aio.AioRpcError) as caught:
                        async for _ in stream:
                            pass
                else:
                    with pytest.raises(grpc.aio.AioRpcError) as caught:
                        await channel.unary_unary(path)(b"", metadata=metadata, timeout=5)
                assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED, (path, caught.value.code())
        service = next(r.name for r in served.registrations if "Diagnostics" not in r.name)
        for path in (
            f"/{service}/Debug",
            f"/{service}/DumpState",
            f"/{service}/getLead",  # method names are exact: no case folding into a real RPC
            "/salesops.debug.v1.DebugService/Exec",
            "/grpc.channelz.v1.Channelz/GetTopChannels",
            "/grpc.channelz.v1.Channelz/GetServers",
        ):
            for md in ((), metadata):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await channel.unary_unary(path)(b"", metadata=md, timeout=5)
                assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED, path
        # What reflection offers a developer is the same inventory, and nothing more.
        call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        listed = {s.name async for answer in call for s in answer.list_services_response.service}
    assert listed == {r.name for r in served.registrations} | {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
