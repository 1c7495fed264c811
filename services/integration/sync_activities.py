"""The sync run activity: begin, read the source page by page (no transaction open while
reading), apply each page in its own transaction, then finish or fail the run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from temporalio import activity

from kit.db import Database
from kit.errors import FailedPrecondition, NotFound
from kit.net import SafeClient
from kit.resources import Transactions
from kit.runtime import Runtime
from services.integration import sync_runs
from services.integration.domain import sync as rules
from services.integration.source_reads import SourceError, outbound_policy, read_page
from services.integration.store import transactions
from services.integration.sync_workflows import RUN_ACTIVITY, SyncInput, SyncOutcome

log = logging.getLogger("salesops.integration.sync")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


async def drive(
    tx: Transactions,
    client: SafeClient,
    inp: SyncInput,
    clock: Clock = utc_now,
    heartbeat: Callable[[], None] = lambda: None,
) -> SyncOutcome:
    """One run of a job, from its cursor to the source's end (or MAX_PAGES pages)."""
    since = datetime.fromisoformat(inp.resync_since) if inp.resync_since else None
    try:
        run, plan = await tx.run(
            inp.tenant,
            lambda uow: sync_runs.begin(
                uow,
                inp.sync_job_id,
                inp.trigger,
                inp.triggered_by,
                clock(),
                run_id=inp.run_id,
                resync_since=since,
            ),
        )
    except (NotFound, FailedPrecondition) as exc:  # the job went, or its connector is off: nothing to retry
        return SyncOutcome(skipped=str(exc))
    if not plan.new:
        return SyncOutcome(
            run.run_id if run else "", run.state if run else 0, run.fetched if run else 0, plan.skipped
        )
    cursor, exhausted, progressed = plan.cursor, False, False
    failure: tuple[str, int] | None = None
    try:
        for _ in range(rules.MAX_PAGES):
            heartbeat()
            page = await read_page(
                client,
                plan.settings,
                plan.secrets,
                plan.collection,
                rules.Cursor.decode(cursor),
                rules.PAGE_SIZE,
            )
            records = page.records
            going, after = await tx.run(
                inp.tenant,
                lambda uow: sync_runs.apply_page(uow, plan.run_id, records, clock()),  # noqa: B023 (awaited in this iteration)
            )
            if not going:
                break
            moved = after != cursor
            progressed = progressed or moved
            cursor = after
            if not page.has_more:
                exhausted = True
                break
            if not moved:  # the source says "more" but hands back nothing new: no progress
                break
    except SourceError as exc:
        failure = (exc.message, exc.code)
    except NotFound:  # the job (or its connector) was deleted while running
        return SyncOutcome(plan.run_id, skipped="the job was deleted")
    except Exception as exc:  # a page that could not be stored: its transaction rolled back, cursor unmoved
        log.exception("sync run %s failed", plan.run_id)
        failure = (
            f"could not store a page ({type(exc).__name__}); the cursor stays at the last stored page",
            13,
        )
    try:
        if failure is not None:
            why, code = failure
            ended = await tx.run(inp.tenant, lambda uow: sync_runs.fail(uow, plan.run_id, why, code, clock()))
        else:
            ended = await tx.run(
                inp.tenant, lambda uow: sync_runs.finish(uow, plan.run_id, exhausted, progressed, clock())
            )
    except NotFound:
        return SyncOutcome(plan.run_id, skipped="the job was deleted")
    return SyncOutcome(ended.run_id, ended.state, ended.fetched)


class SyncActivities:
    def __init__(self, db: Database) -> None:
        self.tx = transactions(db)
        self._client: SafeClient | None = None

    @property
    def client(self) -> SafeClient:
        if self._client is None:  # built inside the worker's loop
            self._client = SafeClient(outbound_policy())
        return self._client

    @activity.defn(name=RUN_ACTIVITY)
    async def run_sync(self, inp: SyncInput) -> SyncOutcome:
        return await drive(self.tx, self.client, inp, heartbeat=activity.heartbeat)

    def all(self) -> Sequence[Callable[..., Any]]:
        return [self.run_sync]


def build(rt: Runtime) -> Sequence[Callable[..., Any]]:
    return SyncActivities(rt.db).all()
