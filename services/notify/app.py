"""How the notify service plugs into the kit runtime."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kit.runtime import Background, Runtime, ServiceSpec
from services.notify import activities as activities_
from services.notify import api, consumers, deliveries, digests, seed, store, workflows
from services.notify.channels import registry


def activities(rt: Runtime) -> Sequence[Callable[..., Any]]:
    adapters = registry.adapters()
    return [
        *activities_.DeliveryActivities(rt.db, adapters).all(),  # type: ignore[list-item]
        *activities_.EscalationActivities(rt.db, rt.redis).all(),  # type: ignore[list-item]
        *activities_.DigestActivities(rt.db, rt.redis).all(),  # type: ignore[list-item]
    ]


def dispatcher(rt: Runtime) -> deliveries.Dispatcher:
    return deliveries.Dispatcher(rt.db, rt.temporal, rt.settings.task_queue)


async def digest_schedule(rt: Runtime) -> None:
    await digests.ensure_schedule(rt.temporal, rt.settings.task_queue)


SPEC = ServiceSpec(
    name="notify",
    metadata=store.metadata,
    outbox=store.outbox,
    processed_events=store.processed_events,
    servicers=api.registrations,
    workflows=[workflows.DeliveryWorkflow, workflows.EscalationWorkflow, workflows.DigestSweepWorkflow],
    activities=activities,
    consumers=[consumers.CONSUMER],
    # Due deliveries and pending escalations -> Temporal workflows (rows queued while Temporal was away).
    background=[Background("notify-dispatcher", dispatcher, role="worker")],
    worker_startup=[digest_schedule],
    demo_seed=seed.demo_seed,
)
