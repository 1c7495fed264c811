"""Run one service process: `python -m services.<name> --role api|worker|all`.

The runtime owns the process-wide dependencies (database, Redis, Temporal
client), migrations in embedded mode, the gRPC server with readiness-aware
health, the outbox relay, stream consumers and the Temporal worker, and stops
them in the right order on SIGTERM/SIGINT.

A service declares what it runs in its `ServiceSpec`; the runtime starts and
stops all of it, so no service writes a create_task/stop pair:
- `consumers`: `ConsumerSpec`s, each one consumer group over some streams;
- `background`: `Background`s, named long-running loops (`run()` / `stop()`);
- `worker_startup`: one-off setup once the worker runs (e.g. a Temporal schedule);
- `demo_seed`: what `make run` seeds through the service's public API;
- `produces`: the stream its outbox relay publishes to.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import redis.asyncio as aioredis
from sqlalchemy import MetaData, Table
from temporalio.client import Client

from kit import housekeeping, redis_client, secrets, temporal
from kit.auth import AuthConfig, TokenVerifier
from kit.config import ConfigError, Settings
from kit.db import Database
from kit.events import Handler, OutboxRelay, StreamConsumer, service_stream
from kit.grpc.health import ReadinessMonitor
from kit.grpc.partners import PartnerGuard, partner_marker_ttl
from kit.grpc.server import GrpcServer, Registration
from kit.heap import tune_gc
from kit.metrics.process import Group, Outbox, ProcessMetrics
from kit.migrations import upgrade_to_head
from kit.resources.paging import page_token_secret
from kit.seeding import DemoSeed
from kit.telemetry import setup_logging, setup_tracing, shutdown_tracing

log = logging.getLogger("salesops.runtime")

ROLES = ("api", "worker", "all")


class Runtime:
    """Shared dependencies of one service process, handed to the service's builders."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.redis: aioredis.Redis = redis_client.connect(
            settings.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=15
        )
        self.auth_config = AuthConfig.from_env()
        self.verifier = TokenVerifier(self.auth_config)
        # Revoked partner keys and per-key rates, shared by every process (kit.grpc.partners).
        self.partners = PartnerGuard(self.redis, marker_ttl=partner_marker_ttl(self.auth_config))
        self._temporal: Client | None = None
        self._temporal_task: asyncio.Task[None] | None = None

    @property
    def temporal(self) -> Client:
        if self._temporal is None:
            from kit.errors import Unavailable

            raise Unavailable("the workflow engine is not connected yet")
        return self._temporal

    def connect_temporal_in_background(self) -> None:
        async def go() -> None:
            self._temporal = await temporal.connect(
                self.settings.temporal_address, self.settings.temporal_namespace, retry_for=3600
            )
            log.info("connected to Temporal at %s", self.settings.temporal_address)

        self._temporal_task = asyncio.create_task(go(), name="temporal-connect")

    async def wait_temporal(self, timeout: float) -> Client:
        assert self._temporal_task is not None
        await asyncio.wait_for(asyncio.shield(self._temporal_task), timeout)
        return self.temporal

    async def check_temporal(self) -> None:
        await temporal.check_health(self.temporal)

    async def check_redis(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        if self._temporal_task is not None and not self._temporal_task.done():
            self._temporal_task.cancel()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        await self.db.dispose()


Starter = Callable[[Runtime], Awaitable[Callable[[], Awaitable[None]]]]
Role = Literal["api", "worker"]


class Runnable(Protocol):
    """A long-running loop: `run()` until `stop()` is awaited."""

    async def run(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class Background:
    """A named long-running task of one role; the runtime starts it and stops it on shutdown."""

    name: str
    build: Callable[[Runtime], Runnable]
    role: Role = "worker"


@dataclass(frozen=True)
class ConsumerSpec:
    """One consumer group over event streams (usually other services' streams).

    `handler(rt)` builds the handler; if the handler object has an async
    `before_ack(deliveries)` method it is called before entries are acknowledged
    (e.g. to flush work batched across a read). `options` are further
    `StreamConsumer` keyword arguments (min_idle, batch_size, ...).
    """

    group: str
    streams: Sequence[str]
    handler: Callable[[Runtime], Handler]
    types: Collection[str] | None = None
    role: Role = "api"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class ServiceSpec:
    """What a service plugs into the runtime. Builders receive the Runtime."""

    name: str
    metadata: MetaData
    outbox: Table
    processed_events: Table
    servicers: Callable[[Runtime], list[Registration]]
    workflows: Sequence[type] = ()
    activities: Callable[[Runtime], Sequence[Callable[..., Any]]] = lambda _rt: ()
    consumers: Sequence[ConsumerSpec] = ()
    background: Sequence[Background] = ()
    worker_startup: Sequence[Callable[[Runtime], Awaitable[None]]] = ()
    # Temporal Worker settings the service tunes (kit.temporal.build_worker `options`).
    worker_options: Mapping[str, Any] = field(default_factory=dict)
    demo_seed: DemoSeed | None = None
    # Slow demo data (e.g. backdated history) `make run` writes after READY, in the background.
    demo_backfill: DemoSeed | None = None
    produces: str = ""  # the stream the outbox relay feeds; default service_stream(name)
    # Older hooks, kept while services move to `consumers`/`background`: each starts and returns its stopper.
    api_background: Sequence[Starter] = field(default_factory=tuple)
    worker_background: Sequence[Starter] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.produces:
            self.produces = service_stream(self.name)
        names = [b.name for b in self.background] + [c.group for c in self.consumers]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: background task and consumer names must be unique: {names}")


def build_consumer(
    rt: Runtime, spec: ServiceSpec, consumer: ConsumerSpec, **overrides: Any
) -> StreamConsumer:
    """The StreamConsumer the runtime runs for `consumer` (tests pass overrides such as block=0.05)."""
    handler = consumer.handler(rt)
    options: dict[str, Any] = {"types": consumer.types, "processed_table": spec.processed_events}
    before_ack = getattr(handler, "before_ack", None)
    if before_ack is not None:
        options["before_ack"] = before_ack
    options.update(consumer.options)
    options.update(overrides)
    return StreamConsumer(rt.redis, rt.db, consumer.group, consumer.streams, handler, **options)


async def start_role(rt: Runtime, spec: ServiceSpec, role: Role) -> list[Callable[[], Awaitable[None]]]:
    """Start the consumers and background tasks of `role`; returns their stoppers, in start order."""
    stoppers: list[Callable[[], Awaitable[None]]] = []
    runnables: list[tuple[str, Runnable]] = [
        (c.group, build_consumer(rt, spec, c)) for c in spec.consumers if c.role == role
    ]
    runnables += [(b.name, b.build(rt)) for b in spec.background if b.role == role]
    for name, runnable in runnables:
        task = asyncio.create_task(runnable.run(), name=f"{spec.name}-{name}")
        task.add_done_callback(_report_exit)
        stoppers.append(_stopper(runnable.stop, task))
    return stoppers


def _report_exit(task: asyncio.Task[None]) -> None:
    # A loop that dies silently is the worst failure: say so loudly.
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s crashed", task.get_name(), exc_info=task.exception())


async def serve(spec: ServiceSpec, role: str, settings: Settings | None = None) -> None:
    settings = settings or Settings.from_env(spec.name)
    rt = Runtime(settings)
    rt.auth_config.check_environment(settings.environment)  # production + dev secret: refuse to start
    page_token_secret()  # a list must not be the first to find the paging secret missing
    secrets.require_key()  # production without a real SALESOPS_SECRETS_KEY: refuse to start
    if settings.migrate_on_start:
        await upgrade_to_head(spec.name, rt.db)
        log.info("%s database migrated", spec.name)
    # Before Temporal connects: a worker's SDK metrics need the runtime chosen at connect time.
    metrics = ProcessMetrics.start(temporal_worker=role in ("worker", "all"))
    rt.connect_temporal_in_background()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    stoppers: list[Callable[[], Awaitable[None]]] = []
    server: GrpcServer | None = None
    monitor: ReadinessMonitor | None = None
    runner: temporal.WorkerRunner | None = None
    try:
        if role in ("api", "all"):
            server = GrpcServer(
                spec.name, settings.grpc, rt.verifier, spec.servicers(rt), partners=rt.partners
            )
            checks = {"database": rt.db.ping, "redis": rt.check_redis, "temporal": rt.check_temporal}
            monitor = ReadinessMonitor(
                server.health, server.service_names, checks, interval=settings.health_interval_seconds
            )
            await server.start()
            monitor.start()
            # The relay runs beside the API: commits there wake it at once.
            relay = OutboxRelay(rt.db, rt.redis, spec.produces, table=spec.outbox)
            relay_task = asyncio.create_task(relay.run(), name="outbox-relay")
            stoppers.append(_stopper(relay.stop, relay_task))
            stoppers += await start_role(rt, spec, "api")
            for start in spec.api_background:
                stoppers.append(await start(rt))
        if role in ("worker", "all"):
            client = await rt.wait_temporal(timeout=120)
            purger = housekeeping.EventTablePurger(rt.db, spec.outbox, spec.processed_events)
            worker = temporal.build_worker(
                client,
                settings.task_queue,
                workflows=[housekeeping.HousekeepingWorkflow, *spec.workflows],
                activities=[purger.purge, *spec.activities(rt)],
                options=spec.worker_options,
            )
            runner = temporal.WorkerRunner(worker)
            runner.start()
            await housekeeping.ensure_schedule(client, spec.name, settings.task_queue)
            for setup in spec.worker_startup:
                await setup(rt)
            stoppers += await start_role(rt, spec, "worker")
            for start in spec.worker_background:
                stoppers.append(await start(rt))
        metrics.watch_events(
            rt.db,
            rt.redis,
            outbox=Outbox(spec.outbox, spec.produces) if role in ("api", "all") else None,
            groups=[Group(c.group, c.streams) for c in spec.consumers if role in ("all", c.role)],
        )
        tune_gc()  # everything started: the heap so far lives as long as the process
        log.info("%s running as %s", spec.name, role)
        await stop.wait()
        log.info("%s stopping", spec.name)
    finally:
        # Drain order: stop advertising readiness, finish calls in flight, then
        # let the worker and background loops finish their current item.
        if monitor is not None:
            await monitor.stop()
        if server is not None:
            await server.stop()
        if runner is not None:
            await runner.stop()
        for stopper in reversed(stoppers):
            with contextlib.suppress(Exception):
                await stopper()
        await metrics.stop()
        await rt.close()
        shutdown_tracing()
        log.info("%s stopped", spec.name)


STOP_GRACE_SECONDS = 30.0


def _stopper(stop: Callable[[], Awaitable[None]], task: asyncio.Task[None]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        # A loop gets to finish its current item; one that ignores stop() (or whose stop() waits on
        # something that never comes) is cancelled once the grace is over.
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop(), STOP_GRACE_SECONDS)
        done, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - time.monotonic()))
        if not done:
            log.warning("%s did not stop within %.0f s; cancelling it", task.get_name(), STOP_GRACE_SECONDS)
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    return run


def main(spec: ServiceSpec, argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m services.{spec.name}")
    parser.add_argument(
        "--role", choices=ROLES, default="all", help="api: gRPC server; worker: Temporal worker"
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env(spec.name)
    setup_logging(spec.name, settings.log_level, settings.log_format)
    setup_tracing(spec.name)
    import uvloop

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(spec, args.role, settings))
    except (ConfigError, secrets.SecretsError) as exc:
        # A configuration the process must not run with: one clear line, no traceback.
        log.critical("%s: %s", spec.name, exc)
        raise SystemExit(f"{spec.name}: {exc}") from None
