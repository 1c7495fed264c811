"""Bootstrap a grpc.aio server: our pipeline, health, reflection, limits, graceful stop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from kit.auth import TokenVerifier
from kit.config import GrpcSettings
from kit.grpc.health import LIVENESS, DetailedHealthServicer
from kit.grpc.interceptors import Handler, ServerPipeline
from kit.grpc.partners import PartnerGuard
from kit.grpc.public import PUBLIC_METHODS
from kit.grpc.scopes import MethodScopes

log = logging.getLogger("salesops.grpc")


@dataclass(frozen=True)
class Registration:
    """One servicer: `add` is the generated `add_XServicer_to_server`, `name` its full service name.

    `public_methods`: method names (of this service) that run without a bearer token because
    the request carries its own credential; each must exist in the contract, and nothing
    else becomes public. `scope_groups`: partner scopes naming a set of this service's
    methods (e.g. ``integration.stock`` -> CheckStock), beside the generic ones (kit.grpc.scopes).
    """

    add: Callable[[Any, grpc.aio.Server], None]
    servicer: Any
    name: str
    public_methods: frozenset[str] = frozenset()
    scope_groups: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def _full(self, names: Iterable[str], what: str) -> frozenset[str]:
        names = frozenset(names)
        if not names:
            return frozenset()
        known = set(descriptor_pool.Default().FindServiceByName(self.name).methods_by_name)
        unknown = sorted(names - known)
        if unknown:
            raise ValueError(f"{what} of {self.name} names unknown methods: {', '.join(unknown)}")
        return frozenset(f"/{self.name}/{name}" for name in names)

    def public_full_names(self) -> frozenset[str]:
        """``/<package>.<Service>/<Method>`` of the public methods; ValueError for an unknown one
        or one missing from `kit.grpc.public.PUBLIC_METHODS` (the list the gateway reads too)."""
        names = self._full(self.public_methods, "public_methods")
        unlisted = sorted(names - PUBLIC_METHODS)
        if unlisted:
            raise ValueError(f"public_methods not in kit.grpc.public.PUBLIC_METHODS: {', '.join(unlisted)}")
        return names

    def scope_group_full_names(self) -> dict[str, frozenset[str]]:
        return {
            scope: self._full(methods, f"scope group {scope}") for scope, methods in self.scope_groups.items()
        }


def public_methods(registrations: Iterable[Registration]) -> frozenset[str]:
    """Every full method name the registrations make public."""
    return frozenset().union(*(reg.public_full_names() for reg in registrations))


def server_options(settings: GrpcSettings) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", settings.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", settings.keepalive_timeout_ms),
        # Clients ping every 10 s to find dead peers (kit.grpc.balancing): allow it with margin.
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.so_reuseport", 1 if settings.reuse_port else 0),
        # Connections end after this age (GOAWAY, calls in flight get the grace): clients then
        # re-resolve and spread over replicas that started since (kit.grpc.balancing).
        ("grpc.max_connection_age_ms", settings.max_connection_age_ms),
        ("grpc.max_connection_age_grace_ms", settings.max_connection_age_grace_ms),
    ]


class MethodTable(grpc.GenericRpcHandler):  # type: ignore[type-arg]
    """Every method of a server with the pipeline around it: the one handler grpc.aio is given.

    It stands in for the grpc.aio server while the generated ``add_XServicer_to_server`` runs:
    the methods it registers go into one dict, wrapped once (kit.grpc.interceptors says why
    neither an interceptor nor grpc.aio's registered methods), and its generic handler is kept
    as the fallback for a method registered no other way.
    """

    def __init__(self, pipeline: ServerPipeline) -> None:
        self._pipeline = pipeline
        self._methods: dict[str, Handler] = {}
        self._fallback: list[grpc.GenericRpcHandler[Any, Any]] = []

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, Handler]
    ) -> None:
        for name, handler in method_handlers.items():
            method = name if name.startswith("/") else f"/{service_name}/{name}"
            self._methods[method] = self._pipeline.wrap(method, handler)

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler[Any, Any]]) -> None:
        self._fallback.extend(handlers)

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        found = self._methods.get(method)
        if found is not None:
            return found
        for generic in self._fallback:
            handler = generic.service(handler_call_details)
            if handler is not None:
                # A method's handler never changes: wrapped once, like the registered ones.
                wrapped = self._methods[method] = self._pipeline.wrap(method, handler)
                return wrapped
        return None  # grpc answers UNIMPLEMENTED

    @property
    def methods(self) -> frozenset[str]:
        return frozenset(self._methods)


class GrpcServer:
    def __init__(
        self,
        service: str,
        settings: GrpcSettings,
        verifier: TokenVerifier,
        registrations: Iterable[Registration],
        *,
        partners: PartnerGuard | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.registrations = list(registrations)
        self.health = DetailedHealthServicer()  # Check answers carry the readiness details
        groups: dict[str, set[str]] = {}
        for reg in self.registrations:
            for scope, methods in reg.scope_group_full_names().items():
                groups.setdefault(scope, set()).update(methods)
        self.pipeline = ServerPipeline(
            service,
            verifier,
            settings.default_deadline_seconds,
            public=public_methods(self.registrations),
            scopes=MethodScopes(groups),
            partners=partners,
        )
        self.methods = MethodTable(self.pipeline)
        registrar: Any = self.methods  # what add_XServicer_to_server calls of a server, it has
        for reg in self.registrations:
            reg.add(reg.servicer, registrar)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, registrar)
        if settings.reflection:
            names = [r.name for r in self.registrations]
            names += [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
            # What reflection.enable_server_reflection does for a grpc.aio server, into the table.
            reflection_pb2_grpc.add_ServerReflectionServicer_to_server(  # type: ignore[no-untyped-call]
                reflection.aio.ReflectionServicer(names),  # type: ignore[attr-defined]
                registrar,
            )
        self.server = grpc.aio.server(handlers=[self.methods], options=server_options(settings))
        self.port = self.server.add_insecure_port(settings.listen)
        if self.port == 0:
            raise RuntimeError(f"cannot listen on {settings.listen}")

    @property
    def service_names(self) -> list[str]:
        return [r.name for r in self.registrations]

    @property
    def address(self) -> str:
        host = self.settings.listen.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    async def start(self) -> None:
        # NOT_SERVING until the readiness monitor has seen every dependency up; liveness from the start.
        for name in ["", *self.service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        await self.server.start()
        log.info("gRPC %s listening on %s", self.service, self.address)

    async def stop(self, grace: float | None = None) -> None:
        """Refuse new calls, let calls in flight finish within the grace period."""
        await self.server.stop(self.settings.grace_seconds if grace is None else grace)
