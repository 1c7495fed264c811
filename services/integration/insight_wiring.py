"""What conversation insights add to the service spec: the weekly digest workflows, activities, schedules."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kit.runtime import Runtime
from services.integration import insight_activities
from services.integration.insight_workflows import WORKFLOWS

WORKER_STARTUP = (insight_activities.ensure_schedules,)


def activities(rt: Runtime) -> Sequence[Callable[..., Any]]:
    return insight_activities.build(rt)


__all__ = ["WORKER_STARTUP", "WORKFLOWS", "activities"]
