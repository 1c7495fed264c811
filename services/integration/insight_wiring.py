"""What conversation insights add to the service spec: the weekly digest workflows, activities, schedules,
and the consumer learning who owns which lead and deal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kit.runtime import Runtime
from services.integration import insight_activities, insight_consumer
from services.integration.insight_workflows import WORKFLOWS

WORKER_STARTUP = (insight_activities.ensure_schedules,)
CONSUMERS = (insight_consumer.CONSUMER,)


def activities(rt: Runtime) -> Sequence[Callable[..., Any]]:
    return insight_activities.build(rt)


__all__ = ["CONSUMERS", "WORKER_STARTUP", "WORKFLOWS", "activities"]
