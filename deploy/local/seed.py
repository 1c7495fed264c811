"""Seed the demo tenant through the services' public APIs (never their tables).

Each feature adds its own step here (grading, routing and SLA settings for
leads, the stage model for pipeline, templates for notify...). The first step
checks that every demo user's token is accepted by every service, so a
misconfigured secret fails `make run` loudly instead of every later request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc

from deploy.local.demo import TENANT
from salesops.common.v1 import diagnostics_pb2, diagnostics_pb2_grpc

Step = Callable[[dict[str, str], dict[str, str]], Awaitable[None]]


async def check_identities(addresses: dict[str, str], tokens: dict[str, str]) -> None:
    for service, address in addresses.items():
        async with grpc.aio.insecure_channel(address) as channel:
            stub = diagnostics_pb2_grpc.DiagnosticsServiceStub(channel)
            for user, token in tokens.items():
                who = await stub.WhoAmI(
                    diagnostics_pb2.WhoAmIRequest(),
                    metadata=(("authorization", f"Bearer {token}"),),
                    timeout=5,
                )
                if who.user_id != user or who.tenant != TENANT or who.service != service:
                    raise RuntimeError(f"{service} sees {user} as {who.user_id}@{who.tenant}")


async def seed_notify_directory(addresses: dict[str, str], tokens: dict[str, str]) -> None:
    """Notify's subscriber directory: the demo users with their org units and roles (idempotent upsert).

    Built-in templates (zh-CN and en for every category) ship with the service and need no seeding.
    """
    from deploy.local.demo import demo_users
    from salesops.common.v1 import types_pb2
    from salesops.notify.v1 import notify_service_pb2, notify_service_pb2_grpc, subscriber_pb2

    if "notify" not in addresses:
        return
    subscribers = [
        subscriber_pb2.Subscriber(
            user_id=u.user_id,
            display_name=u.display_name,
            org_unit_path=u.org,
            roles=[types_pb2.Role.Value("ROLE_" + r.upper()) for r in u.roles],
            active=True,
            email=f"{u.user_id}@demo.salesops.test",
        )
        for u in demo_users()
    ]
    async with grpc.aio.insecure_channel(addresses["notify"]) as channel:
        await notify_service_pb2_grpc.NotifyServiceStub(channel).BatchUpsertSubscribers(
            notify_service_pb2.BatchUpsertSubscribersRequest(subscribers=subscribers),
            metadata=(("authorization", f"Bearer {tokens['admin']}"),),
            timeout=10,
        )


async def seed_leads(addresses: dict[str, str], tokens: dict[str, str]) -> None:
    """Leads: grading, routing, pool and SLA settings and the reps' routing profiles (services/leads/seed.py)."""
    from services.leads import seed as leads_seed

    if "leads" in addresses:
        await leads_seed.seed(addresses["leads"], tokens["admin"])


STEPS: list[Step] = [check_identities, seed_notify_directory, seed_leads]


async def seed(addresses: dict[str, str], tokens: dict[str, str]) -> None:
    for step in STEPS:
        await step(addresses, tokens)
