"""Seed the demo tenant through the services' public APIs (never their tables).

`start` (what the launcher runs first) also waits for the stack to be ready and mints the demo
tokens, so the launcher, which outlives it, holds no gRPC, HTTP client or JWT code (about 90 MB).

The steps are derived from the services: every `ServiceSpec.demo_seed` hook runs,
in the order of `kit.config.SERVICES`, with the demo organisation
(`deploy/local/demo.py`) and a token per demo user. First, every demo user's token
is checked against every service, so a misconfigured secret fails `make run`
loudly instead of every later request.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import time
from collections.abc import Mapping

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.local.demo import demo_clients, demo_tokens
from kit.config import SERVICES
from kit.runtime import ServiceSpec
from kit.seeding import DemoSeed, SeedClients
from salesops.common.v1 import diagnostics_pb2, diagnostics_pb2_grpc


async def check_identities(clients: SeedClients) -> None:
    for service in clients.addresses:
        async with clients.channel(service) as channel:
            stub = diagnostics_pb2_grpc.DiagnosticsServiceStub(channel)
            for user in clients.tokens:
                who = await stub.WhoAmI(
                    diagnostics_pb2.WhoAmIRequest(), metadata=clients.metadata(user), timeout=5
                )
                if who.user_id != user or who.tenant != clients.tenant or who.service != service:
                    raise RuntimeError(f"{service} sees {user} as {who.user_id}@{who.tenant}")


def service_specs() -> list[ServiceSpec]:
    return [importlib.import_module(f"services.{name}.app").SPEC for name in SERVICES]


def seed_steps(specs: list[ServiceSpec]) -> list[tuple[str, DemoSeed]]:
    """(service, seed) for every service that seeds something."""
    steps: list[tuple[str, DemoSeed]] = []
    for spec in specs:
        if spec.demo_seed is not None:
            steps.append((spec.name, spec.demo_seed))
    return steps


async def seed(addresses: Mapping[str, str], tokens: Mapping[str, str]) -> None:
    clients = demo_clients(addresses, tokens)
    await check_identities(clients)
    for service, step in seed_steps(service_specs()):
        if service in clients.addresses:
            await step(clients)


async def backfill(addresses: Mapping[str, str], tokens: Mapping[str, str]) -> None:
    """The slow demo data (`ServiceSpec.demo_backfill`), written after the stack is READY."""
    clients = demo_clients(addresses, tokens)
    for spec in service_specs():
        if spec.demo_backfill is not None and spec.name in clients.addresses:
            await spec.demo_backfill(clients)


async def _serving(address: str) -> bool:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


async def wait_ready(addresses: Mapping[str, str], gateway: str, since: float, timeout: float) -> float:
    """Seconds from `since` (time.time(), when the launcher started the stack) until every service
    is SERVING and the gateway ready; `timeout` counts from this wait's own start, as it did when
    the launcher waited itself (this child's start-up and imports are not taken from it)."""
    pending = dict(addresses)
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            for name, addr in list(pending.items()):
                if await _serving(addr):
                    print(f"  {name:<12} SERVING on {addr}  ({time.time() - since:.1f}s)", flush=True)
                    del pending[name]
            if not pending:
                try:
                    if (await http.get(f"{gateway}/readyz", timeout=2)).status_code == 200:
                        return time.time() - since
                except httpx.HTTPError:
                    pass
            await asyncio.sleep(0.25)
    raise TimeoutError(f"not ready after {timeout:.0f}s; still waiting for {sorted(pending) or ['gateway']}")


async def start(
    addresses: Mapping[str, str], gateway: str, since: float, timeout: float, result_fd: int
) -> None:
    """Wait for the stack, mint the demo tokens, seed; the tokens and the time to ready (JSON) to
    `result_fd`. A stack not ready in time: the error on stderr, exit 3 (the launcher says so)."""
    try:
        took = await wait_ready(addresses, gateway, since, timeout)
    except TimeoutError as exc:
        print(f"salesops: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(3) from None
    tokens = demo_tokens()
    await seed(addresses, tokens)
    with os.fdopen(result_fd, "w") as out:
        json.dump({"tokens": tokens, "took": took}, out)


def main() -> None:
    """`python -m deploy.local.seed {seed|backfill}`, the stack's addresses and the demo tokens as
    JSON on stdin (`start FD`: the addresses, gateway, since and timeout instead of tokens): the
    launcher runs the seeds in this child process, so it never holds the services' code (about
    150 MB) for the life of the stack."""
    given = json.load(sys.stdin)
    if sys.argv[1] == "start":
        args = (given["addresses"], given["gateway"], given["since"], given["timeout"])
        asyncio.run(start(*args, result_fd=int(sys.argv[2])))
        return
    step = {"seed": seed, "backfill": backfill}[sys.argv[1]]
    asyncio.run(step(given["addresses"], given["tokens"]))


if __name__ == "__main__":
    main()
