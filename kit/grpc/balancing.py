"""How every client channel spreads calls over replicas, and which calls may be retried.

Targets (``SALESOPS_<SVC>_ADDR``), all balanced with ``round_robin``:

- ``host:port``: resolved by DNS; every A/AAAA record is a backend;
- a gRPC target such as ``dns:///leads-headless.ns.svc.cluster.local:50051`` (a headless
  Service: one record per ready pod, re-resolved whenever a connection goes away);
- a list ``ipv4:10.0.0.1:50051,10.0.0.2:50051`` (or plain ``10.0.0.1:50051,10.0.0.2:50051``).

Servers close connections after ``grpc.max_connection_age_ms`` (see kit.grpc.server), so a
client re-resolves and a replica started later gets its share without any reconnect storm.

Retries happen only where a second delivery cannot do harm, decided from the contracts:

- read-only methods (an HTTP ``get`` rule, ``idempotency_level`` NO_SIDE_EFFECTS/IDEMPOTENT, or a
  read verb: Get, List, Check, Summarize, ...) are retried by gRPC itself, through the retry
  policy in the channel's service config;
- methods whose request carries a client-made key (``request_id``, ``idempotency_key``, or for
  ``Create<Thing>`` the ``<thing>_id`` the client may choose, e.g. CreateLead's ``lead.lead_id``)
  are retried by :class:`ClientKeyRetry` only when the call actually carries that key: a create
  without it would be a second create.

Only UNAVAILABLE is retried (the replica went away or refused the connection); any other code
is an answer.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from ipaddress import IPv4Address, ip_address
from typing import Any

import grpc
from google.api import annotations_pb2, field_behavior_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, MethodDescriptor, ServiceDescriptor

ROOT_PACKAGE = "salesops"
READ_VERBS = ("Get", "List", "Check", "Summarize", "Search", "Preview", "Explain", "Compare", "WhoAmI")
KEY_FIELDS = ("request_id", "idempotency_key")
RETRY_ATTEMPTS = 3  # the first try and two retries
RETRY_BACKOFF_SECONDS = (0.05, 0.2)

# Per connection, not per channel: each channel gets its own connections (the gateway opens
# several channels per backend to spread load over more HTTP/2 connections).
BASE_OPTIONS: list[tuple[str, Any]] = [
    # A replica whose machine vanished (no RST: link down, power off) is given up after at
    # most 10 + 5 s, so round_robin stops picking it; servers accept pings every 5 s.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    ("grpc.enable_retries", 1),
    ("grpc.use_local_subchannel_pool", 1),
    # The service config is ours alone; a DNS TXT record must not replace it.
    ("grpc.service_config_disable_resolution", 1),
    # A replica that went away: try it again soon, never wait minutes.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
]


class TargetError(ValueError):
    """An address setting that is not a usable gRPC target."""


def channel_target(address: str) -> str:
    """The gRPC target for an address setting (see the module docstring for the accepted forms)."""
    address = address.strip()
    if not address:
        raise TargetError("empty gRPC address")
    if "," not in address or ":///" in address or address.startswith(("ipv4:", "ipv6:", "unix:")):
        return address
    # A bare list of addresses: gRPC's static resolvers take one address family per target.
    parts = [p.strip() for p in address.split(",") if p.strip()]
    hosts = []
    for part in parts:
        host, sep, port = part.rpartition(":")
        if not sep or not port.isdigit():
            raise TargetError(f"{part!r} in {address!r} is not host:port")
        try:
            hosts.append(ip_address(host.strip("[]")))
        except ValueError:
            raise TargetError(
                f"{address!r}: a list of addresses must be IP literals; for names use dns:///name:port"
            ) from None
    if all(isinstance(h, IPv4Address) for h in hosts):
        return "ipv4:" + ",".join(parts)
    if not any(isinstance(h, IPv4Address) for h in hosts):
        return "ipv6:" + ",".join(parts)
    raise TargetError(f"{address!r} mixes IPv4 and IPv6 addresses")


def _services() -> Iterator[ServiceDescriptor]:
    root = importlib.import_module(ROOT_PACKAGE)
    for area in pkgutil.iter_modules(root.__path__):
        version = f"{ROOT_PACKAGE}.{area.name}.v1"
        try:
            package = importlib.import_module(version)
        except ImportError:
            continue
        for module in pkgutil.iter_modules(package.__path__):
            if module.name.endswith("_pb2"):
                yield from importlib.import_module(
                    f"{version}.{module.name}"
                ).DESCRIPTOR.services_by_name.values()


def _read_only(method: MethodDescriptor) -> bool:
    options = method.GetOptions()
    if options.idempotency_level in (
        descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
        descriptor_pb2.MethodOptions.IDEMPOTENT,
    ):
        return True
    if options.Extensions[annotations_pb2.http].WhichOneof("pattern") == "get":
        return True
    return method.name.startswith(READ_VERBS)


def _client_settable(message: Descriptor, name: str) -> bool:
    field = message.fields_by_name.get(name)
    if field is None or field.type != field.TYPE_STRING:
        return False
    behavior = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return field_behavior_pb2.OUTPUT_ONLY not in behavior


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _client_key(method: MethodDescriptor) -> tuple[str, ...] | None:
    """The path of the client-made key in the request, if the contract has one."""
    request = method.input_type
    for name in KEY_FIELDS:
        if _client_settable(request, name):
            return (name,)
    if method.name.startswith("Create"):
        thing = _snake(method.name.removeprefix("Create"))
        if _client_settable(request, f"{thing}_id"):
            return (f"{thing}_id",)
        inner = request.fields_by_name.get(thing)
        if (
            inner is not None
            and inner.message_type is not None
            and _client_settable(inner.message_type, f"{thing}_id")
        ):
            return (thing, f"{thing}_id")
    return None


@dataclass(frozen=True)
class RetryPlan:
    read_only: frozenset[str]  # full method paths: /pkg.Service/Method
    client_key: dict[str, tuple[str, ...]]


@cache
def retry_plan() -> RetryPlan:
    read_only: set[str] = set()
    keyed: dict[str, tuple[str, ...]] = {}
    for service in _services():
        for method in service.methods:
            if method.client_streaming or method.server_streaming:
                continue  # a stream is not replayed
            path = f"/{service.full_name}/{method.name}"
            if _read_only(method):
                read_only.add(path)
            elif (key := _client_key(method)) is not None:
                keyed[path] = key
    return RetryPlan(frozenset(read_only), keyed)


@cache
def service_config() -> str:
    """round_robin, and gRPC's own retry of UNAVAILABLE for read-only methods."""
    names = []
    for path in sorted(retry_plan().read_only):
        service, method = path.strip("/").split("/")
        names.append({"service": service, "method": method})
    config: dict[str, Any] = {"loadBalancingConfig": [{"round_robin": {}}]}
    if names:
        config["methodConfig"] = [
            {
                "name": names,
                "retryPolicy": {
                    "maxAttempts": RETRY_ATTEMPTS,
                    "initialBackoff": f"{RETRY_BACKOFF_SECONDS[0]}s",
                    "maxBackoff": f"{RETRY_BACKOFF_SECONDS[-1]}s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    return json.dumps(config)


def channel_options(extra: list[tuple[str, Any]] | None = None) -> list[tuple[str, Any]]:
    return [*BASE_OPTIONS, ("grpc.service_config", service_config()), *(extra or [])]


def _has_key(request: Any, path: tuple[str, ...]) -> bool:
    value = request
    for name in path:
        value = getattr(value, name, None)
        if value is None:
            return False
    return bool(value)


class ClientKeyRetry(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """Retry UNAVAILABLE for a method with a client-made key, when this call carries the key."""

    def __init__(self, plan: RetryPlan | None = None) -> None:
        self.keys = (plan or retry_plan()).client_key

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        method = client_call_details.method
        path = self.keys.get(method.decode() if isinstance(method, bytes) else method)
        if path is None or not _has_key(request, path):
            return await continuation(client_call_details, request)
        loop = asyncio.get_running_loop()
        timeout = client_call_details.timeout
        deadline = None if timeout is None else loop.time() + timeout
        for attempt in range(RETRY_ATTEMPTS):
            details = client_call_details
            if deadline is not None:
                details = grpc.aio.ClientCallDetails(
                    method,
                    max(0.0, deadline - loop.time()),
                    client_call_details.metadata,
                    client_call_details.credentials,
                    client_call_details.wait_for_ready,
                )
            call = await continuation(details, request)
            code = await call.code()
            if code != grpc.StatusCode.UNAVAILABLE or attempt == RETRY_ATTEMPTS - 1:
                return call
            pause = RETRY_BACKOFF_SECONDS[min(attempt, len(RETRY_BACKOFF_SECONDS) - 1)]
            if deadline is not None and loop.time() + pause >= deadline:
                return call
            await asyncio.sleep(pause)
        raise AssertionError("unreachable")


def balanced_channel(address: str, *, interceptors: list[Any] | None = None) -> grpc.aio.Channel:
    """An insecure channel (TLS terminates at the mesh) balanced over every address of `address`."""
    return grpc.aio.insecure_channel(
        channel_target(address),
        options=channel_options(),
        interceptors=[ClientKeyRetry(), *(interceptors or [])],  # type: ignore[list-item]
    )


__all__ = [
    "BASE_OPTIONS",
    "ClientKeyRetry",
    "RetryPlan",
    "TargetError",
    "balanced_channel",
    "channel_options",
    "channel_target",
    "retry_plan",
    "service_config",
]
