"""Seed the demo tenant through the services' public APIs (never their tables).

The steps are derived from the services: every `ServiceSpec.demo_seed` hook runs,
in the order of `kit.config.SERVICES`, with the demo organisation
(`deploy/local/demo.py`) and a token per demo user. First, every demo user's token
is checked against every service, so a misconfigured secret fails `make run`
loudly instead of every later request.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from deploy.local.demo import demo_clients
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


def main() -> None:
    """`python -m deploy.local.seed {seed|backfill}`, the stack's addresses and the demo tokens as
    JSON on stdin: the launcher runs the seeds in this child process, so it never holds the
    services' code (about 150 MB) for the life of the stack."""
    import asyncio
    import json
    import sys

    step = {"seed": seed, "backfill": backfill}[sys.argv[1]]
    given = json.load(sys.stdin)
    asyncio.run(step(given["addresses"], given["tokens"]))


if __name__ == "__main__":
    main()
