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
# The integration worker's settings, sized for a burst of thousands of deliveries on 2 cores:
# - cache room for every delivery in flight, so the task after an attempt finds its workflow in
#   memory (the SDK default is 1,000; a 10,000 burst has more in flight, and an evicted workflow
#   fetches and replays its history; not measured separately);
# - 32 workflow tasks at once, not 100: tasks are milliseconds of CPU each, and with 100 a loaded
#   process held some past their 10 s timeout (retried by the server: the work done twice).
WORKER_OPTIONS = {"max_cached_workflows": 10_000, "max_concurrent_workflow_tasks": 32}


def activities(rt: Runtime) -> Sequence[Callable[..., Any]]:
    return OutboundActivities.from_runtime(rt).all()


async def sweep_schedule(rt: Runtime) -> None:
    """Rows made while Temporal was away get their workflow within a minute."""
    await deliveries.ensure_sweep_schedule(rt.temporal, rt.settings.task_queue)
