"""Temporal client (with tracing) and a worker runner that stops gracefully.

Pollers autoscale: with the SDK's fixed default (5 pollers) a burst of timers
due at once queues behind the pollers and workflows wake seconds late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.worker import PollerBehaviorAutoscaling, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

log = logging.getLogger("salesops.temporal")

# Our own packages and the heavy libraries they pull in are deterministic to
# import; passing them through keeps the sandbox from re-importing them per run.
PASSTHROUGH = ("kit", "salesops", "sqlalchemy", "google.protobuf", "grpc", "redis", "opentelemetry", "ulid")


async def connect(address: str, namespace: str = "default", *, retry_for: float = 0.0) -> Client:
    """Connect, retrying for `retry_for` seconds while the server comes up."""
    deadline = asyncio.get_running_loop().time() + retry_for
    while True:
        try:
            return await Client.connect(address, namespace=namespace, interceptors=[TracingInterceptor()])
        except Exception as exc:
            if asyncio.get_running_loop().time() >= deadline:
                raise
            log.info("Temporal at %s not reachable yet (%s); retrying", address, type(exc).__name__)
            await asyncio.sleep(0.5)


async def check_health(client: Client) -> None:
    ok = await client.service_client.check_health(timeout=timedelta(seconds=2))
    if not ok:
        raise ConnectionError("Temporal reports not serving")


def build_worker(
    client: Client,
    task_queue: str,
    *,
    workflows: Sequence[type] = (),
    activities: Sequence[Callable[..., Any]] = (),
    graceful_shutdown: timedelta = timedelta(seconds=10),
    max_pollers: int = 20,
    options: Mapping[str, Any] | None = None,
) -> Worker:
    """`options`: further Worker settings a service tunes (ServiceSpec.worker_options)."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(workflows),
        activities=list(activities),
        graceful_shutdown_timeout=graceful_shutdown,
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
        ),
        workflow_task_poller_behavior=PollerBehaviorAutoscaling(maximum=max_pollers),
        activity_task_poller_behavior=PollerBehaviorAutoscaling(maximum=max_pollers),
        **(options or {}),
    )


class WorkerRunner:
    """Runs a worker in the background; `stop()` lets running activities finish first."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.worker.run(), name="temporal-worker")

    @property
    def failed(self) -> BaseException | None:
        if self._task is None or not self._task.done() or self._task.cancelled():
            return None
        return self._task.exception()

    async def stop(self) -> None:
        if self._task is None:
            return
        if not self._task.done():
            await self.worker.shutdown()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
