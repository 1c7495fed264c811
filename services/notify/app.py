"""How the notify service plugs into the kit runtime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from kit.runtime import Runtime, ServiceSpec
from services.notify import api, consumers, deliveries, digests, escalation, store, workflows
from services.notify.channels import registry


def activities(rt: Runtime) -> Sequence[Callable[..., Any]]:
    client = httpx.AsyncClient(timeout=10.0)
    return [
        *deliveries.DeliveryActivities(rt.db, registry.adapters(client)).all(),  # type: ignore[list-item]
        *escalation.EscalationActivities(rt.db, rt.redis).all(),  # type: ignore[list-item]
        *digests.DigestActivities(rt.db, rt.redis).all(),  # type: ignore[list-item]
    ]


async def start_dispatcher(rt: Runtime) -> Callable[[], Awaitable[None]]:
    dispatcher = deliveries.Dispatcher(rt.db, rt.temporal, rt.settings.task_queue)
    task = asyncio.create_task(dispatcher.run(), name="notify-dispatcher")

    async def stop() -> None:
        await dispatcher.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return stop


async def ensure_digest_schedule(rt: Runtime) -> Callable[[], Awaitable[None]]:
    await digests.ensure_schedule(rt.temporal, rt.settings.task_queue)

    async def nothing() -> None:
        return None

    return nothing


SPEC = ServiceSpec(
    name="notify",
    metadata=store.metadata,
    outbox=store.outbox,
    processed_events=store.processed_events,
    servicers=api.registrations,
    workflows=[workflows.DeliveryWorkflow, workflows.EscalationWorkflow, workflows.DigestSweepWorkflow],
    activities=activities,
    api_background=[consumers.start_consumer],
    worker_background=[start_dispatcher, ensure_digest_schedule],
)
