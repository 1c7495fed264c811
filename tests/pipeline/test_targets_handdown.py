"""Handing targets down: amounts, periods and paths validated, one per unit or rep and period,
what children get bounded by the parent (also when two race), owners placed at or above the unit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc
import pytest
from google.type import date_pb2  # type: ignore[import-untyped]
from sqlalchemy import text

from kit.auth import Principal
from kit.errors import FailedPrecondition
from kit.resources import UnitOfWork
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import target_pb2, types_pb2
from services.pipeline import targets
from services.pipeline.store import transactions
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import mask, refused
from tests.pipeline.test_targets import QUARTER, REGION, REP, TEAM, YEAR, cascade_fixture, cny, put, target


async def test_what_is_handed_down_is_validated(pipeline: Pipeline) -> None:
    await cascade_fixture(pipeline)
    # Team A may hand down 45: 40 given, 10 more is over.
    status = await refused(
        pipeline.call(
            "CreateTarget",
            pb.CreateTargetRequest(target=target("a3", REP, 10_000, user="rep-a3")),
            user="sup-a",
        )
    )
    assert "CASCADE_EXCEEDS_PARENT" in str(status)
    await put(pipeline, target("a3", REP, 5_000, user="rep-a3"), user="sup-a")
    # Lowering the team's committed below what it handed down is refused too; a challenge makes room.
    lower = target_pb2.Target(target_id="ta", committed_amount=cny(44_000))
    await refused(
        pipeline.call(
            "UpdateTarget",
            pb.UpdateTargetRequest(target=lower, update_mask=mask("committed_amount")),
            user="director-east",
        )
    )
    lower.challenge_amount.CopyFrom(cny(46_000))
    updated = (
        await pipeline.call(
            "UpdateTarget",
            pb.UpdateTargetRequest(target=lower, update_mask=mask("committed_amount", "challenge_amount")),
            user="director-east",
        )
    ).target
    assert (updated.committed_amount.amount_minor, updated.challenge_amount.amount_minor) == (44_000, 46_000)

    bad = [
        (
            target(
                "x1",
                REP,
                1,
                user="rep-a4",
                period=types_pb2.SalesPeriod(
                    granularity=types_pb2.PERIOD_GRANULARITY_WEEK, start_date=QUARTER.start_date
                ),
            ),
            "target.period.granularity",
        ),
        (
            target(
                "x2",
                REP,
                1,
                user="rep-a4",
                period=types_pb2.SalesPeriod(
                    granularity=types_pb2.PERIOD_GRANULARITY_MONTH,
                    start_date=date_pb2.Date(year=YEAR, month=2, day=30),
                ),
            ),
            "target.period.start_date",
        ),
        (target("x3", REGION, 1, org="east/team-a"), "target.org_path"),
        (target("x4", REP, 100, user="rep-a4", challenge=50), "target.challenge_amount"),
        (target("x5", REP, -1, user="rep-a4"), "target.committed_amount"),
        (
            target_pb2.Target(
                target_id="x6",
                period=QUARTER,
                level=REP,
                user_id="rep-a4",
                committed_amount=Money(amount_minor=1, currency="USD"),
            ),
            "target.committed_amount",
        ),
        (
            target_pb2.Target(target_id="x7", period=QUARTER, level=REP, user_id="rep-a4"),
            "target.committed_amount",
        ),
        (target("", REP, 1, user="rep-a4"), "target.target_id"),
    ]
    for msg, field in bad:
        status = await refused(
            pipeline.call("CreateTarget", pb.CreateTargetRequest(target=msg), user="sup-a"),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert field in str(status), (field, status)
    # One target per rep (or unit) and period; the same create again is the same target.
    again = await put(pipeline, target("a1", REP, 20_000, user="rep-a1"), user="sup-a")
    assert again.etag == "1"
    await refused(
        pipeline.call(
            "CreateTarget",
            pb.CreateTargetRequest(target=target("a1bis", REP, 1, user="rep-a1")),
            user="sup-a",
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    await refused(
        pipeline.call(
            "CreateTarget", pb.CreateTargetRequest(target=target("a1", REP, 2, user="rep-a1")), user="sup-a"
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    # A rep without a member profile cannot be placed in the cascade.
    await refused(
        pipeline.call(
            "CreateTarget", pb.CreateTargetRequest(target=target("z", REP, 1, user="rep-z9")), user="admin"
        )
    )


async def test_owners_are_members_at_or_above_the_unit(pipeline: Pipeline) -> None:
    await cascade_fixture(pipeline)
    year = types_pb2.SalesPeriod(granularity=types_pb2.PERIOD_GRANULARITY_YEAR, start_date=QUARTER.start_date)
    outsider = target("ty", TEAM, 1, org="east/team-a", period=year)
    outsider.owner_user_id = "rep-b1"
    await refused(
        pipeline.call("CreateTarget", pb.CreateTargetRequest(target=outsider), user="director-east"),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    acting = target_pb2.Target(target_id="ta", owner_user_id="director-east")  # the director stands in
    moved = (
        await pipeline.call(
            "UpdateTarget",
            pb.UpdateTargetRequest(target=acting, update_mask=mask("owner_user_id")),
            user="director-east",
        )
    ).target
    assert moved.owner_user_id == "director-east"
    acting.owner_user_id = "nobody"
    await refused(
        pipeline.call(
            "UpdateTarget",
            pb.UpdateTargetRequest(target=acting, update_mask=mask("owner_user_id")),
            user="director-east",
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_a_parent_is_held_while_a_childs_share_is_checked(
    pipeline: Pipeline, database_url: str
) -> None:
    """Two hand-downs racing under one parent: the second waits for the first, then sees it and is refused
    (each alone fits team A's last 5: 40 of 45 handed down)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    await cascade_fixture(pipeline)
    tx = transactions(pipeline.db)
    sup = Principal(
        "sup-a", "demo", frozenset({"supervisor"}), "east/team-a", datetime(2999, 1, 1, tzinfo=UTC)
    )
    first_in, release = asyncio.Event(), asyncio.Event()

    async def first(uow: UnitOfWork) -> None:
        await targets.create(uow, sup, target("c0", REP, 4_000, user="rep-a3"), datetime.now(UTC))
        first_in.set()
        await release.wait()

    async def second(uow: UnitOfWork) -> None:
        await targets.create(uow, sup, target("c1", REP, 4_000, user="rep-a4"), datetime.now(UTC))

    t1 = asyncio.create_task(tx.run("demo", first))
    await asyncio.wait_for(first_in.wait(), 60)
    t2 = asyncio.create_task(tx.run("demo", second))
    waiting = 0
    for _ in range(1200):  # until the second transaction waits on a lock in this test's database
        if t2.done():
            break
        async with pipeline.db.engine.connect() as conn:
            waiting = int(await conn.scalar(text(WAITING)) or 0)
        if waiting:
            break
        await asyncio.sleep(0.05)
    assert not t2.done() and waiting, "the second hand-down did not wait for the first"
    release.set()
    await t1
    with pytest.raises(FailedPrecondition):
        await t2


WAITING = (  # row locks wait on a transaction id: no database in pg_locks, so ask pg_stat_activity
    "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'"
)
