"""Update discipline and dwell rules: deadlines in the tenant zone across DST (pure), the freeze boundary and
the team's own p90 dwell computed in SQL (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from kit.auth import Principal
from kit.db import Database
from kit.migrations import upgrade_to_head
from kit.resources import UnitOfWork
from salesops.pipeline.v1 import settings_pb2, types_pb2
from services.pipeline import deals, discipline, moves, pipeline_settings, stage_models
from services.pipeline.domain import discipline as d
from services.pipeline.repositories.discipline import DisciplineRecords
from services.pipeline.store import DealRow, transactions
from services.pipeline.store_discipline import DwellFlagRow
from tests.pipeline.helpers import field_gated_model, new_deal

BERLIN, SH = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Shanghai")
FAR = datetime(2100, 1, 1, tzinfo=UTC)
ADMIN = Principal("admin", "demo", frozenset({"admin"}), "", FAR)


def rep(user: str, team: str) -> Principal:
    return Principal(user, "demo", frozenset({"rep"}), team, FAR)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[arg-type,misc]


def test_weekly_deadlines_are_local_wall_clock_times_across_dst() -> None:
    due = d.WeeklyDue(4, time(18), BERLIN)  # Friday 18:00 Berlin
    # Spring forward on Sunday 2027-03-28: the deadlines either side are 18:00 CET and 18:00 CEST.
    before, after = utc(2027, 3, 26, 17), utc(2027, 4, 2, 16)
    assert due.next_due(utc(2027, 3, 27, 12)) == after
    assert due.previous(after) == before and after - before == timedelta(hours=167)
    assert due.last_due(after) == after and due.last_due(after - timedelta(seconds=1)) == before
    # Fall back on Sunday 2027-10-31: a 169-hour week.
    assert due.next_due(utc(2027, 10, 30)) - due.last_due(utc(2027, 10, 30)) == timedelta(hours=169)
    # The default: Friday 18:00 Shanghai is 10:00 UTC, no DST.
    sh = d.WeeklyDue(4, time(18), SH)
    assert sh.next_due(utc(2026, 12, 7)) == utc(2026, 12, 11, 10)
    assert d.overdue_before(sh, utc(2026, 12, 11, 10)) == utc(2026, 12, 4, 10)
    # A due time inside the spring gap (Sunday 02:30) falls on the first instant after it, 03:30 CEST.
    gap = d.WeeklyDue(6, time(2, 30), BERLIN)
    assert gap.next_due(utc(2027, 3, 27)) == utc(2027, 3, 28, 1, 30)


@pytest.mark.parametrize(("n", "rank"), [(1, 1), (9, 9), (10, 9), (11, 10), (20, 18), (70, 63), (71, 64)])
def test_the_nearest_rank_p90(n: int, rank: int) -> None:
    assert d.nearest_rank(90, n) == rank
    assert d.percentile([float(i) for i in range(1, n + 1)], 90) == rank


def test_the_tighter_limit_wins() -> None:
    assert d.effective_limit(7 * 86400, 5 * 86400) == (5 * 86400, "TEAM_P90")
    assert d.effective_limit(7 * 86400, None) == (7 * 86400, "STAGE")
    assert d.effective_limit(None, None) is None


@pytest.fixture
async def run(database_url: str) -> Any:
    db = Database(database_url)
    await upgrade_to_head("pipeline", db)
    tx = transactions(db)

    async def go(work: Callable[[UnitOfWork], Awaitable[Any]]) -> Any:
        return await tx.run("demo", work)

    go.db = db  # type: ignore[attr-defined]
    yield go
    await db.dispose()


async def test_the_freeze_boundary_and_the_switch(run: Any) -> None:
    deadline = utc(2026, 12, 11, 10)  # Friday 18:00 Shanghai
    previous = deadline - timedelta(days=7)
    a = rep("rep-a1", "east/team-a")
    for deal_id, confirmed in (("on", previous), ("after", previous + timedelta(seconds=1))):
        await run(lambda uow, i=deal_id, c=confirmed: deals.create_deal(uow, a, new_deal(i), c))
    assert await run(lambda uow: discipline.freeze_overdue(uow, deadline - timedelta(seconds=1))) == 0
    assert await run(lambda uow: discipline.freeze_overdue(uow, deadline)) == 1  # updated at the old deadline
    assert await run(lambda uow: discipline.freeze_overdue(uow, deadline + timedelta(days=1))) == 0  # once
    async with run.db.system_session() as s:
        frozen = {r.deal_id: r.frozen for r in await s.scalars(select(DealRow))}
    assert frozen == {"on": True, "after": False}

    off = settings_pb2.PipelineSettings()
    off.CopyFrom(pipeline_settings.DEFAULTS)
    off.weekly_update.disabled = True
    await run(lambda uow: pipeline_settings.STORE.put(uow, off, "", "admin"))
    assert await run(lambda uow: discipline.freeze_overdue(uow, deadline + timedelta(days=14))) == 0


async def _stay(run: Any, deal_id: str, who: Principal, entered: datetime, left: datetime | None) -> None:
    deal = new_deal(deal_id, next_step="call")
    deal.custom_fields["req_doc"] = "doc"
    await run(lambda uow: deals.create_deal(uow, who, deal, entered - timedelta(hours=1)))
    await run(lambda uow: moves.move_stage(uow, who, deal_id, "needs_confirmed", "", "", entered))
    if left is not None:
        await run(lambda uow: moves.move_stage(uow, who, deal_id, "solution_confirmed", "", "", left))


async def test_the_teams_own_p90_in_a_stage_is_a_dwell_limit_once_history_allows(run: Any) -> None:
    from google.protobuf.field_mask_pb2 import FieldMask

    model = field_gated_model()
    for stage in model.stages:  # the team's own p90 alone (the built-in fixed limits would flag first)
        stage.ClearField("dwell_limit")
    await run(lambda uow: stage_models.update(uow, model, FieldMask(paths=["stages"]), "admin", {}, {}))
    a, b = rep("rep-a1", "east/team-a"), rep("rep-b1", "east/team-b")
    now = utc(2026, 12, 1, 12)
    t0 = now - timedelta(days=60)
    # Team A: ten finished stays of 1..10 days in needs_confirmed (p90 = the 9th: 9 days); team B: nine.
    for i in range(1, 11):
        await _stay(run, f"A{i}", a, t0, t0 + timedelta(days=i))
    for i in range(1, 10):
        await _stay(run, f"B{i}", b, t0, t0 + timedelta(days=i))
    p90 = await run(lambda uow: DisciplineRecords(uow).team_p90(d.MIN_DWELL_SAMPLE, d.P90))
    # (Every deal spent its first hour in initial_contact: that is the team's norm there too.)
    assert p90 == {("east/team-a", "needs_confirmed"): 9 * 86400, ("east/team-a", "initial_contact"): 3600}

    entered = now - timedelta(days=9, hours=12)
    await _stay(run, "A-open", a, entered, None)
    await _stay(run, "A-young", a, now - timedelta(days=8), None)
    await _stay(run, "B-open", b, entered, None)
    wake = await run(lambda uow: discipline.next_wake(uow, entered + timedelta(days=9, hours=-1)))
    assert wake == entered + timedelta(days=9)  # the timer plans the team's p90 deadline
    assert await run(lambda uow: discipline.flag_dwell(uow, now)) == 1
    assert await run(lambda uow: discipline.flag_dwell(uow, now)) == 0
    async with run.db.system_session() as s:
        flags = list(await s.scalars(select(DwellFlagRow)))
    assert [(f.deal_id, f.limit_source, f.deadline_at.replace(tzinfo=UTC)) for f in flags] == [
        ("A-open", "TEAM_P90", entered + timedelta(days=9))
    ]


def test_working_unit_limits_count_on_the_business_calendar() -> None:
    limits = discipline.Limits(SH)
    proto = types_pb2.TimeLimit(value=2, unit=types_pb2.TIME_UNIT_WORKING_DAYS)
    limits.fixed["quote"] = (d.DwellLimit(2, "WORKING_DAYS"), proto)
    friday = datetime(2026, 12, 4, 10, tzinfo=SH)
    # Two working days after a Friday morning: the weekend does not count.
    assert limits.deadline("east/team-a", "quote", friday) == (datetime(2026, 12, 8, 10, tzinfo=SH), "STAGE")
    # The shortest a working-day limit can be: two calendar days (what the SQL pre-filter uses).
    assert limits.min_reach("east/team-a", "quote") == timedelta(days=2)
    limits.team_p90[("east/team-a", "quote")] = 86400
    assert limits.deadline("east/team-a", "quote", friday) == (friday + timedelta(days=1), "TEAM_P90")


async def test_the_freeze_runs_in_keyset_batches(run: Any) -> None:
    deadline = utc(2026, 12, 11, 10)
    a = rep("rep-a1", "east/team-a")
    for n in range(5):
        await run(lambda uow, i=n: deals.create_deal(uow, a, new_deal(f"K{i}"), deadline - timedelta(days=9)))
    after, sizes = "", []
    while True:
        batch = await run(lambda uow, s=after: discipline.freeze_batch(uow, deadline, s, 2))
        sizes.append(batch.count)
        if batch.count < 2:
            break
        after = batch.last
    assert sizes == [2, 2, 1] and after == "K3"
