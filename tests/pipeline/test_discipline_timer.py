"""The tenant's discipline timer on Temporal's time-skipping server: weekly freeze and thaw, dwell flags."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment

from kit.auth import Principal
from kit.db import Database
from kit.events import unpack_payload
from kit.migrations import upgrade_to_head
from kit.resources import UnitOfWork
from kit.temporal import WorkerRunner, build_worker
from salesops.pipeline.v1 import events_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import closing, deals, moves, stage_models
from services.pipeline.discipline_activities import DisciplineActivities, poke
from services.pipeline.discipline_workflows import DisciplineWorkflow
from services.pipeline.documents import deal_of
from services.pipeline.store import DealChangeRow, DealRow, transactions
from services.pipeline.store_discipline import DwellFlagRow
from tests.leads.helpers import events
from tests.pipeline.helpers import field_gated_model, new_deal

SH = ZoneInfo("Asia/Shanghai")
FAR = datetime(2100, 1, 1, tzinfo=UTC)
ADMIN = Principal("admin", "demo", frozenset({"admin"}), "", FAR)
REP = Principal("rep-a1", "demo", frozenset({"rep"}), "east/shanghai/team-a", FAR)


@dataclass
class World:
    db: Database
    env: WorkflowEnvironment
    queue: str

    async def run(self, work: Callable[[UnitOfWork], Awaitable[Any]]) -> Any:
        return await transactions(self.db).run("demo", work)

    async def now(self) -> datetime:
        return (await self.env.get_current_time()).astimezone(UTC)

    async def skip_to(self, when: datetime) -> None:
        current = await self.now()
        if when > current:
            await self.env.sleep(when - current)

    async def deal(self, deal_id: str) -> DealRow:
        async with self.db.system_session() as s:
            row = await s.scalar(select(DealRow).where(DealRow.deal_id == deal_id))
        assert row is not None
        return row

    async def until(self, check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await check():
            assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
            await asyncio.sleep(0.1)


@pytest.fixture
async def world(sqlite_url: str, temporal_skipping: WorkflowEnvironment) -> AsyncIterator[World]:
    db = Database(sqlite_url)
    await upgrade_to_head("pipeline", db)
    queue = f"pipeline-{uuid.uuid4().hex[:8]}"
    acts = DisciplineActivities(db)
    runner = WorkerRunner(
        build_worker(
            temporal_skipping.client,
            queue,
            workflows=[DisciplineWorkflow],
            activities=[acts.plan, acts.sweep],
        )
    )
    runner.start()
    try:
        yield World(db, temporal_skipping, queue)
    finally:
        await runner.stop()
        await db.dispose()


def friday_18(after: datetime, weeks: int = 0) -> datetime:
    """The first Friday 18:00 Shanghai strictly after `after`, plus `weeks` weeks."""
    local = after.astimezone(SH)
    days = (4 - local.weekday()) % 7
    due = datetime.combine(
        local.date() + timedelta(days=days), datetime.min.time().replace(hour=18), tzinfo=SH
    )
    if due <= local:
        due += timedelta(days=7)
    return (due + timedelta(days=7 * weeks)).astimezone(UTC)


async def test_a_deal_not_updated_in_its_window_freezes_at_the_deadline_and_an_update_thaws_it(
    world: World,
) -> None:
    t0 = await world.now()
    await world.run(lambda uow: deals.create_deal(uow, REP, new_deal("stale"), t0))
    await world.run(lambda uow: deals.create_deal(uow, REP, new_deal("kept"), t0))
    await poke(world.env.client, world.queue, "demo")
    first, second = friday_18(t0), friday_18(t0, 1)

    # The first deadline closes the window the deals were created in: nothing freezes.
    await world.skip_to(first + timedelta(hours=1))
    assert not (await world.deal("stale")).frozen
    # "kept" is confirmed in the next window; "stale" is not.
    mid = first + timedelta(days=2)
    await world.skip_to(mid)
    etag = str((await world.deal("kept")).version)
    await world.run(
        lambda uow: closing.confirm_deal(uow, REP, pb.ConfirmDealRequest(deal_id="kept", etag=etag), mid)
    )

    await world.skip_to(second + timedelta(minutes=5))

    async def frozen() -> bool:
        return (await world.deal("stale")).frozen

    await world.until(frozen)
    assert not (await world.deal("kept")).frozen
    stale = await world.deal("stale")
    assert deal_of(stale).frozen_time.ToDatetime(tzinfo=UTC) == second  # exactly the deadline, tenant zone
    found = await events(world.db, "pipeline.DealFrozen")
    assert [unpack_payload(e, events_pb2.DealFrozen).deal.deal_id for _, e in found] == ["stale"]
    evt = unpack_payload(found[0][1], events_pb2.DealFrozen)
    assert evt.update_due_time.ToDatetime(tzinfo=UTC) == second
    async with world.db.system_session() as s:
        audit = (
            await s.execute(
                select(DealChangeRow.old_value, DealChangeRow.new_value, DealChangeRow.changed_by).where(
                    DealChangeRow.deal_id == "stale", DealChangeRow.field == "frozen"
                )
            )
        ).all()
    assert [tuple(a) for a in audit] == [("false", "true", "system:pipeline")]

    # The weekly update thaws it, audited, and DealUnfrozen says for how long.
    later = second + timedelta(hours=3)
    await world.skip_to(later)
    await world.run(lambda uow: closing.confirm_deal(uow, REP, pb.ConfirmDealRequest(deal_id="stale"), later))
    thawed = await world.deal("stale")
    assert not thawed.frozen and not deal_of(thawed).HasField("frozen_time")
    unfrozen = await events(world.db, "pipeline.DealUnfrozen")
    assert len(unfrozen) == 1
    u = unpack_payload(unfrozen[0][1], events_pb2.DealUnfrozen)
    assert u.frozen_duration.ToTimedelta() == later - second and u.unfrozen_by == "rep-a1"


async def _limit_first_stage(world: World, hours: int) -> None:
    async def work(uow: UnitOfWork) -> None:
        model = field_gated_model()
        model.stages[0].dwell_limit.CopyFrom(types_pb2.TimeLimit(value=hours, unit=types_pb2.TIME_UNIT_HOURS))
        await stage_models.update(uow, model, FieldMask(paths=["stages"]), "admin", {}, {})

    await world.run(work)


async def test_a_deal_over_its_stage_dwell_limit_is_flagged_once_and_a_new_stage_restarts_the_clock(
    world: World,
) -> None:
    await _limit_first_stage(world, 30)
    t0 = await world.now()
    await world.run(lambda uow: deals.create_deal(uow, REP, new_deal("slow", next_step="call"), t0))
    await poke(world.env.client, world.queue, "demo")
    await world.skip_to(t0 + timedelta(hours=29))
    assert not (await events(world.db, "pipeline.DealDwellExceeded"))

    await world.skip_to(t0 + timedelta(hours=31))

    async def flagged() -> bool:
        return bool(await events(world.db, "pipeline.DealDwellExceeded"))

    await world.until(flagged)
    found = await events(world.db, "pipeline.DealDwellExceeded")
    evt = unpack_payload(found[0][1], events_pb2.DealDwellExceeded)
    assert evt.deal.deal_id == "slow" and evt.stage_id == "initial_contact"
    assert evt.dwell_deadline_time.ToDatetime(tzinfo=UTC) == t0 + timedelta(hours=30)
    assert evt.dwell_limit == types_pb2.TimeLimit(value=30, unit=types_pb2.TIME_UNIT_HOURS)
    dwell = deal_of(await world.deal("slow")).dwell
    assert dwell.exceeded and dwell.dwell_deadline_time.ToDatetime(tzinfo=UTC) == t0 + timedelta(hours=30)

    # Days later: still one flag for this stay.
    await world.skip_to(t0 + timedelta(days=3))
    assert len(await events(world.db, "pipeline.DealDwellExceeded")) == 1
    async with world.db.system_session() as s:
        flags = list(await s.scalars(select(DwellFlagRow)))
    assert [(f.deal_id, f.limit_source, f.limit_seconds) for f in flags] == [("slow", "STAGE", 30 * 3600)]

    # Entering another stage clears the deal's flag; coming back is a new stay with a new clock.
    at = t0 + timedelta(days=3, hours=1)
    row = await world.deal("slow")
    await world.run(
        lambda uow: moves.move_stage(uow, REP, "slow", "needs_confirmed", str(row.version), "", at)
    )
    assert not deal_of(await world.deal("slow")).dwell.exceeded
    row = await world.deal("slow")
    await world.run(
        lambda uow: moves.move_stage(uow, REP, "slow", "initial_contact", str(row.version), "back", at)
    )
    await poke(world.env.client, world.queue, "demo")
    await world.skip_to(at + timedelta(hours=31))

    async def twice() -> bool:
        return len(await events(world.db, "pipeline.DealDwellExceeded")) == 2

    await world.until(twice)


async def test_the_worker_starts_every_tenants_timer_and_deal_events_wake_it(world: World) -> None:
    from types import SimpleNamespace

    from temporalio.client import WorkflowExecutionStatus

    from kit.events import new_envelope
    from services.pipeline.discipline_consumers import ensure_timers, timer_handler
    from services.pipeline.discipline_workflows import workflow_id

    t0 = await world.now()
    for tenant in ("demo", "acme"):
        who = Principal("rep-a1", tenant, frozenset({"rep"}), "east/team-a", FAR)
        await transactions(world.db).run(
            tenant, partial(deals.create_deal, who=who, incoming=new_deal("X1"), at=t0)
        )
    rt = SimpleNamespace(
        db=world.db, temporal=world.env.client, settings=SimpleNamespace(task_queue=world.queue)
    )
    await ensure_timers(rt)  # type: ignore[arg-type]
    for tenant in ("demo", "acme"):
        described = await world.env.client.get_workflow_handle(workflow_id(tenant)).describe()
        assert described.status == WorkflowExecutionStatus.RUNNING
    # A deal event signals the running timer (signal-with-start: the same run, planned again).
    handle = world.env.client.get_workflow_handle(workflow_id("demo"))
    before = (await handle.describe()).run_id

    async def signals() -> int:
        history = await handle.fetch_history()
        return sum(1 for e in history.events if e.HasField("workflow_execution_signaled_event_attributes"))

    started = await signals()
    envelope = new_envelope(
        "pipeline.DealStageChanged", "demo", events_pb2.DealStageChanged(), source="pipeline"
    )
    await timer_handler(rt)(envelope, None)  # type: ignore[arg-type]

    async def signalled_again() -> bool:
        return await signals() > started

    await world.until(signalled_again, timeout=15)
    assert (await handle.describe()).run_id == before
