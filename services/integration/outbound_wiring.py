"""What outbound webhooks add to the integration ServiceSpec: workflows, activities, consumer, schedule."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kit.runtime import Runtime
from services.integration import deliveries, outbound_consumer
from services.integration.outbound_activities import OutboundActivities
from services.integration.outbound_workflows import DeliveryWorkflow, SweepWorkflow

WORKFLOWS: tuple[type, ...] = (DeliveryWorkflow, SweepWorkflow)
CONSUMERS = (outbound_consumer.CONSUMER,)


def activities(rt: Runtime) -> Sequence[Callable[..., Any]]:
    return OutboundActivities.from_runtime(rt).all()


async def sweep_schedule(rt: Runtime) -> None:
    """Rows made while Temporal was away get their workflow within a minute."""
    await deliveries.ensure_sweep_schedule(rt.temporal, rt.settings.task_queue)
