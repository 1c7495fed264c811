"""What scheduled sync and the demo ERP add to the integration ServiceSpec."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kit.config import deployment_environment
from kit.runtime import Background, Runtime
from services.integration import demo_erp, sync_activities, sync_schedules
from services.integration.sync_workflows import SyncJobRunWorkflow

WORKFLOWS: Sequence[type] = (SyncJobRunWorkflow,)
# Worker start: every job's schedule as its committed row says (repairs a missed call).
WORKER_STARTUP = (sync_schedules.ensure_all,)


def activities(rt: Runtime) -> Sequence[Callable[..., Any]]:
    return sync_activities.build(rt)


def background() -> tuple[Background, ...]:
    """The loopback demo ERP, embedded mode only (`make run`); never in production."""
    if deployment_environment() != "embedded" or demo_erp.demo_port() == 0:
        return ()
    return (Background("demo-erp", lambda _rt: demo_erp.DemoErp(), role="api"),)
