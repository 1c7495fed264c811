"""The weekly snapshot and call locks: the workflow on the time-skipping server, the per-tenant
schedule on a real Temporal dev server, and a replay of a recorded history against the current code.

The month under test is the first month M of a quarter at least ten days ahead, so every
date is known: on M-03 no lock is due; on M-09 WEEK_1 of the month and of the quarter; on the
last day of M the month's MID_PERIOD, TWO_WEEKS_LEFT and LAST_WEEK at once (a run missed
nothing: each point is locked on the first run on or after it), the quarter's nothing new.
"""

from __future__ import annotations

import asyncio
import calendar
import json
import os
import uuid
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from deploy.local.demo import DEMO_USERS
from kit import temporal
from kit.db import Database
from kit.migrations import upgrade_to_head
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import deal_pb2, forecast_pb2, types_pb2
from services.pipeline import members, pipeline_settings, seed, seed_history
from services.pipeline.convert import date_proto
from services.pipeline.domain.accuracy import LockPoint
from services.pipeline.domain.forecast import Granularity
from services.pipeline.repositories.calls import CallLocks
from services.pipeline.repositories.snapshots import Snapshots
from services.pipeline.snapshot_activities import (
    SnapshotActivities,
    ensure_tenant_schedule,
    schedule_id,
    take_weekly,
)
from services.pipeline.snapshot_workflows import (
    EnsureSnapshotSchedulesWorkflow,
    WeeklyInput,
    WeeklyResult,
    WeeklySnapshotWorkflow,
)
from services.pipeline.store import transactions

T = "sched"
HISTORY = Path(__file__).parent / "histories" / "weekly_snapshot.json"
# The hourly keeper's run, recorded before its body moved to kit.schedules.run_keeper.
KEEPER_HISTORY = Path(__file__).parent / "histories" / "snapshot_schedules_keeper.json"
WORKFLOWS = [WeeklySnapshotWorkflow, EnsureSnapshotSchedulesWorkflow]


def quarter_month_ahead(today: date) -> date:
    """The first month of the first quarter starting at least ten days after `today`."""
    month = date(today.year, today.month, 1)
    while True:
        y, m = divmod(month.year * 12 + month.month, 12)
        month = date(y, m + 1, 1)
        if (month - today).days >= 10 and month.month in (1, 4, 7, 10):
            return month


def utc(day: date, hour: int = 4) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)  # noon in Asia/Shanghai


async def prepare(db: Database, month: date) -> None:
    """A rep with one COMMIT deal closing in `month` and a call for it (made at the real now)."""
    tx = transactions(db)
    admin = seed_history.principal(DEMO_USERS[0], T)
    rep = seed_history.principal(next(u for u in DEMO_USERS if u.user_id == "rep-a1"), T)
    now = datetime.now(UTC)
    for p in seed.profiles(DEMO_USERS):
        save = partial(
            members.update_profile, who=admin, incoming=p, mask=FieldMask(), allow_missing=True, at=now
        )
        await tx.run(T, save)
    deal = deal_pb2.Deal(
        deal_id="d1",
        title="d1",
        customer=deal_pb2.DealCustomer(display_name="Customer d1"),
        owner_user_id="rep-a1",
        amount=Money(amount_minor=500_000, currency="CNY"),
        expected_close_date=date_proto(month + timedelta(days=20)),
    )
    await tx.run(T, seed_history.create(rep, deal)(now))
    await tx.run(T, seed_history.update(rep, "d1", category="COMMIT")(now))
    s = forecast_pb2.ForecastSubmission(
        submission_id="call-1",
        level=types_pb2.ORG_LEVEL_REP,
        commit_amount=Money(amount_minor=450_000, currency="CNY"),
    )
    s.period.granularity = types_pb2.PERIOD_GRANULARITY_MONTH
    s.period.start_date.CopyFrom(date_proto(month))
    await tx.run(T, seed_history.submit(rep, s)(now))


async def locked_points(db: Database, granularity: str, start: date) -> list[str]:
    async with transactions(db).read(T) as uow:
        return [lock.lock_point for lock in await CallLocks(uow).of_period(granularity, start)]


async def test_weekly_run_snapshots_and_locks_each_point_once(
    temporal_skipping: Any, sqlite_url: str
) -> None:
    env = temporal_skipping
    db = Database(sqlite_url)
    await upgrade_to_head("pipeline", db)
    start = quarter_month_ahead((await env.get_current_time()).date())
    end = start.replace(day=calendar.monthrange(start.year, start.month)[1])
    await prepare(db, start)
    queue = f"pipeline-{uuid.uuid4().hex[:8]}"
    acts = SnapshotActivities(db, None)

    async def run(until: datetime | None = None, workflow_id: str = "") -> WeeklyResult:
        """Skip the server's clock to `until`, then run the week's workflow on it (no skipping while
        it runs: the server would otherwise jump ahead as soon as it idles)."""
        if until is not None:
            await env.sleep(until - await env.get_current_time())
        with env.auto_time_skipping_disabled():
            result: WeeklyResult = await env.client.execute_workflow(
                WeeklySnapshotWorkflow.run,
                WeeklyInput(T),
                id=workflow_id or f"weekly-{uuid.uuid4().hex}",
                task_queue=queue,
            )
        return result

    try:
        async with temporal.build_worker(env.client, queue, workflows=WORKFLOWS, activities=[acts.take]):
            first = await run(utc(start.replace(day=3)))
            assert [t.locked for t in first.taken] == [[], []]
            again = await run()
            assert [t.snapshot_id for t in again.taken] == [t.snapshot_id for t in first.taken]  # same day
            week1 = await run(utc(start.replace(day=9)))
            assert [t.locked for t in week1.taken] == [["WEEK_1"], ["WEEK_1"]]
            assert week1.taken[0].snapshot_id != first.taken[0].snapshot_id
            last = await run(utc(end))
            assert [t.locked for t in last.taken] == [["MID_PERIOD", "TWO_WEEKS_LEFT", "LAST_WEEK"], []]
            if os.environ.get("SALESOPS_TEST_RECORD_HISTORIES"):
                await run(workflow_id=(last_id := f"weekly-{uuid.uuid4().hex}"))
                history = await env.client.get_workflow_handle(last_id).fetch_history()
                HISTORY.parent.mkdir(exist_ok=True)
                HISTORY.write_text(
                    json.dumps({"workflow_id": last_id, "history": json.loads(history.to_json())})
                )
        assert sorted(await locked_points(db, "MONTH", start)) == sorted(p.value for p in LockPoint)
        async with transactions(db).read(T) as uow:
            w1 = await CallLocks(uow).at_point("MONTH", start, "WEEK_1")
            assert w1 is not None and w1.lock_date == start.replace(day=9)
            [rep_call] = await CallLocks(uow).calls(w1.lock_id)
            # The call in force and the system figure beside it: 10 % of 500,000 weighted, 500,000 commit.
            assert (rep_call.subject_key, rep_call.call_commit_minor) == ("rep-a1", 450_000)
            assert (rep_call.system_weighted_minor, rep_call.system_commit_minor) == (50_000, 500_000)
            snap = await Snapshots(uow).get(w1.snapshot_id)
            assert snap.request_id == f"weekly:MONTH:{start.replace(day=9).isoformat()}"
            body = forecast_pb2.ForecastSnapshot.FromString(snap.body)
            assert body.trigger == forecast_pb2.SNAPSHOT_TRIGGER_SCHEDULED
    finally:
        await db.dispose()


def recorded_history(path: Path) -> WorkflowHistory:
    recorded = json.loads(path.read_text())
    return WorkflowHistory.from_json(recorded["workflow_id"], recorded["history"])


@pytest.mark.parametrize("path", [HISTORY, KEEPER_HISTORY], ids=["weekly", "keeper"])
async def test_recorded_history_replays_against_the_current_code(path: Path) -> None:
    history = recorded_history(path)
    result = await Replayer(workflows=WORKFLOWS).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None


async def test_a_schedule_per_tenant_follows_its_zone_and_snapshot_time(
    temporal_dev: Any, sqlite_url: str
) -> None:
    client = temporal_dev.client
    db = Database(sqlite_url)
    await upgrade_to_head("pipeline", db)
    queue = f"pipeline-{uuid.uuid4().hex[:8]}"
    settings = pipeline_settings.current
    try:
        async with transactions(db).read(T) as uow:
            s = await settings(uow)
        assert await ensure_tenant_schedule(client, queue, T, s) is True
        assert await ensure_tenant_schedule(client, queue, T, s) is False  # unchanged: left alone
        handle = client.get_schedule_handle(schedule_id(T))
        described = await handle.describe()
        assert described.schedule.spec.time_zone_name == "Asia/Shanghai"
        [cal] = described.schedule.spec.calendars
        assert (cal.day_of_week[0].start, cal.hour[0].start, cal.minute[0].start) == (
            5,
            20,
            0,
        )  # Friday 20:00
        s.time_zone, s.snapshot_time.hours = "Europe/Berlin", 18
        assert await ensure_tenant_schedule(client, queue, T, s) is True
        described = await handle.describe()
        assert described.schedule.spec.time_zone_name == "Europe/Berlin"
        assert described.schedule.spec.calendars[0].hour[0].start == 18
        # Triggered now, the schedule's workflow takes the tenant's snapshots through the activity.
        await prepare(db, quarter_month_ahead(date.today()))
        acts = SnapshotActivities(db, client)
        async with temporal.build_worker(client, queue, workflows=WORKFLOWS, activities=acts.all()):
            await handle.trigger()
            for _ in range(600):
                async with transactions(db).read(T) as uow:
                    found = await Snapshots(uow).page("", None, None, None, _page(), "q")
                if len(found.items) >= 2:
                    break
                await asyncio.sleep(0.1)
        assert {s.granularity for s in found.items} == {"MONTH", "QUARTER"}
        await handle.delete()
    finally:
        await db.dispose()


def _page() -> Any:
    from kit.resources import PageRequest

    return PageRequest(size=10)


async def test_concurrent_runs_take_one_snapshot_and_one_lock(database_url: str) -> None:
    """Two workers running the same week at once (a retried activity beside a late one): one snapshot
    per tenant day, one lock per lock point; the loser of the race gets the winner's."""
    db = Database(database_url, pool_size=10)
    await upgrade_to_head("pipeline", db)
    try:
        month = quarter_month_ahead(date.today())
        await prepare(db, month)
        tx = transactions(db)
        at = utc(month.replace(day=9))
        runs = await asyncio.gather(
            *(tx.run(T, lambda uow: take_weekly(uow, Granularity.MONTH, at)) for _ in range(3))
        )
        assert len({r.snapshot_id for r in runs}) == 1
        assert sorted(p for r in runs for p in r.locked) == ["WEEK_1"]  # taken by exactly one
        assert await locked_points(db, "MONTH", month) == ["WEEK_1"]
    finally:
        await db.dispose()
