"""Forecast accuracy against locked calls, over real gRPC on SQLite and PostgreSQL, on a hand-worked month.

The month is March 2025. Deals (created 2025-02-20 at initial contact, 10 %, closing 2025-03-31):

    deal          owner   amount   category   at the lock            afterwards
    a1-won        rep-a1  100,000  COMMIT     open, p 0.10           won 03-28
    a1-lost       rep-a1   50,000  COMMIT     open, p 0.10           lost 03-27
    a2-best       rep-a2   80,000  BEST_CASE  open, p 0.30 (minutes) won 03-30
    a2-commit     rep-a2   40,000  COMMIT     open, p 0.10           won 03-27
    b1-push       rep-b1   60,000  COMMIT     open, p 0.10           pushed to 04-15 on 03-27

Calls: rep-a1 150,000 and rep-a2 60,000 (03-20); sup-a adjusts rep-a2 to 110,000 (03-22) and
calls team east/team-a 240,000 (03-21); rep-b1 never calls. Locks: WEEK_1 on 03-08 (no call yet)
and LAST_WEEK on 03-25; rep-a1's 999,999 of 03-26 comes after the lock and must not count.

Worked by hand (A = won in March, F = the call in force at LAST_WEEK, adjusted first):

    rep-a1: F 150,000  A 100,000  |A-F| 50,000  APE 0.5   attainment 2/3  commit 150,000 -> won 100,000 (2/3)
            Brier ((0.1-1)^2 + (0.1-0)^2) / 2 = (0.81 + 0.01) / 2 = 0.41
    rep-a2: F 110,000  A 120,000  |A-F| 10,000  APE 1/12  attainment 12/11  commit 40,000 -> won 40,000 (1)
            own call 60,000: |A-F| 60,000; adjustment value (60,000 - 10,000) / 120,000 = 5/12
            Brier ((0.3-1)^2 + (0.1-1)^2) / 2 = (0.49 + 0.81) / 2 = 0.65
    rep-b1: no call -> system commit at the lock 60,000; A 0: APE n/a, WAPE n/a, attainment 0
    company: F 320,000  A 220,000  WAPE (50+10+60)/220 = 6/11  APE 100/220 = 5/11
             commit 250,000 -> won 140,000 = 0.56   Brier 2.12 / 4 = 0.53
             own calls 150+60+60 = 270,000, their error 170,000: adjustment value (170-120)/220 = 5/22
    east/team-a: reps' WAPE 60/220 = 3/11; the unit's own call 240,000: APE 20/220 = 1/11
    At WEEK_1 nobody had called: F = system commit = 150,000 + 40,000 + 60,000 = 250,000, 3 missing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from deploy.local.demo import DEMO_USERS, demo_user
from kit.resources import Transactions
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import deal_pb2, forecast_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import members, seed, seed_history
from services.pipeline.convert import date_proto
from services.pipeline.domain import accuracy as acc
from services.pipeline.store import transactions
from tests.pipeline.conftest import Pipeline

MARCH = date(2025, 3, 1)
T = "demo"


def at(day: int, month: int = 3, hour: int = 2) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=UTC)


def who(user: str) -> Any:
    return seed_history.principal(demo_user(user), T)


def deal(deal_id: str, owner: str, amount: int) -> deal_pb2.Deal:
    return deal_pb2.Deal(
        deal_id=deal_id,
        title=deal_id,
        customer=deal_pb2.DealCustomer(display_name=f"Customer {deal_id}"),
        owner_user_id=owner,
        amount=Money(amount_minor=amount, currency="CNY"),
        expected_close_date=date_proto(date(2025, 3, 31)),
    )


def call(sid: str, amount: int, level: str = "REP", **kw: Any) -> forecast_pb2.ForecastSubmission:
    s = forecast_pb2.ForecastSubmission(
        submission_id=sid,
        level=types_pb2.OrgLevel.Value(f"ORG_LEVEL_{level}"),
        commit_amount=Money(amount_minor=amount, currency="CNY"),
        **kw,
    )
    s.period.granularity = types_pb2.PERIOD_GRANULARITY_MONTH
    s.period.start_date.CopyFrom(date_proto(MARCH))
    return s


async def build_march(tx: Transactions) -> None:
    """The month of the docstring, made through the use cases at its past times."""
    admin = who("admin")
    for p in seed.profiles(DEMO_USERS):
        save = partial(
            members.update_profile, who=admin, incoming=p, mask=FieldMask(), allow_missing=True, at=at(1, 2)
        )
        await tx.run(T, save)
    h = seed_history
    born = at(20, 2)
    steps: list[tuple[datetime, Any]] = []
    for deal_id, owner, amount, category in (
        ("a1-won", "rep-a1", 100_000, "COMMIT"),
        ("a1-lost", "rep-a1", 50_000, "COMMIT"),
        ("a2-best", "rep-a2", 80_000, "BEST_CASE"),
        ("a2-commit", "rep-a2", 40_000, "COMMIT"),
        ("b1-push", "rep-b1", 60_000, "COMMIT"),
    ):
        steps.append((born, h.create(who(owner), deal(deal_id, owner, amount))))
        steps.append((born + timedelta(hours=1), h.update(who(owner), deal_id, category=category)))
    steps += [
        (at(1), h.attach(who("rep-a2"), "a2-best", "meeting_minutes")),
        (at(1, hour=3), h.move(who("rep-a2"), "a2-best", "needs_confirmed")),
        (at(8, hour=12), h.lock(admin, MARCH, acc.LockPoint.WEEK_1)),
        (at(20), h.submit(who("rep-a1"), call("c-a1", 150_000))),
        (at(20, hour=3), h.submit(who("rep-a2"), call("c-a2", 60_000))),
        (at(21), h.submit(who("sup-a"), call("u-a", 240_000, "CITY", org_path="east/team-a"))),
        (
            at(22),
            h.submit(
                who("sup-a"),
                call(
                    "adj-a2", 110_000, kind=forecast_pb2.SUBMISSION_KIND_ADJUSTMENT, subject_user_id="rep-a2"
                ),
            ),
        ),
        (at(25, hour=12), h.lock(admin, MARCH, acc.LockPoint.LAST_WEEK)),
        (at(26), h.submit(who("rep-a1"), call("c-a1-late", 999_999))),
        (at(27), h.lose(who("rep-a1"), "a1-lost", "PRICE")),
        (at(27, hour=3), h.win(who("rep-a2"), "a2-commit")),
        (at(27, hour=4), h.update(who("rep-b1"), "b1-push", close=date(2025, 4, 15))),
        (at(28), h.win(who("rep-a1"), "a1-won")),
        (at(30), h.win(who("rep-a2"), "a2-best")),
    ]
    for t, step in steps:
        await tx.run(T, step(t))


def period() -> types_pb2.SalesPeriod:
    return types_pb2.SalesPeriod(granularity=types_pb2.PERIOD_GRANULARITY_MONTH, start_date=date_proto(MARCH))


async def accuracy(pipeline: Pipeline, user: str = "admin", **kw: Any) -> pb.GetForecastAccuracyResponse:
    req = pb.GetForecastAccuracyRequest(period=period(), **kw)
    out: pb.GetForecastAccuracyResponse = await pipeline.call("GetForecastAccuracy", req, user=user)
    return out


@pytest.fixture
async def march(pipeline: Pipeline) -> Pipeline:
    await build_march(transactions(pipeline.db))
    return pipeline


async def test_accuracy_by_rep_matches_the_worked_example(march: Pipeline) -> None:
    resp = await accuracy(march, group_by=types_pb2.ORG_LEVEL_REP)
    total = resp.total
    assert total.lock_point == forecast_pb2.LOCK_POINT_LAST_WEEK
    assert total.period_closed and total.forecast_date == date_proto(date(2025, 3, 25))
    assert (total.forecast_amount.amount_minor, total.actual_amount.amount_minor) == (320_000, 220_000)
    assert total.wape == pytest.approx(6 / 11)
    assert total.error_ratio == pytest.approx(5 / 11) and total.bias_ratio == pytest.approx(5 / 11)
    assert total.commit_conversion_ratio == pytest.approx(0.56)
    assert total.brier_score == pytest.approx(0.53) and total.brier_sample_size == 4
    assert total.rep_call_amount.amount_minor == 270_000
    assert total.adjustment_value == pytest.approx(5 / 22)
    assert total.calls_missing == 1
    rows = {r.key: r for r in resp.rows}
    assert list(rows) == ["rep-a1", "rep-a2", "rep-b1"]
    a1, a2, b1 = rows["rep-a1"], rows["rep-a2"], rows["rep-b1"]
    assert a1.display_name == "Rep A1"
    assert (a1.forecast_amount.amount_minor, a1.actual_amount.amount_minor) == (150_000, 100_000)
    assert a1.error_ratio == pytest.approx(0.5) and a1.wape == pytest.approx(0.5)
    assert a1.attainment_ratio == pytest.approx(2 / 3)
    assert a1.commit_conversion_ratio == pytest.approx(2 / 3)
    assert a1.brier_score == pytest.approx(0.41)
    assert not a1.HasField("adjustment_value")
    assert (a2.forecast_amount.amount_minor, a2.rep_call_amount.amount_minor) == (110_000, 60_000)
    assert a2.error_ratio == pytest.approx(1 / 12) and a2.attainment_ratio == pytest.approx(12 / 11)
    assert a2.adjustment_value == pytest.approx(5 / 12)
    assert a2.commit_conversion_ratio == pytest.approx(1.0) and a2.brier_score == pytest.approx(0.65)
    assert b1.forecast_amount.amount_minor == 60_000 and b1.actual_amount.amount_minor == 0
    assert not b1.HasField("error_ratio") and not b1.HasField("wape") and not b1.HasField("brier_score")
    assert b1.attainment_ratio == 0.0 and b1.calls_missing == 1 and b1.commit_conversion_ratio == 0.0


async def test_roll_up_keeps_reps_wape_and_uses_the_units_own_call(march: Pipeline) -> None:
    resp = await accuracy(march, group_by=types_pb2.ORG_LEVEL_CITY)
    rows = {r.key: r for r in resp.rows}
    team_a = rows["east/team-a"]
    assert team_a.forecast_amount.amount_minor == 240_000 and team_a.actual_amount.amount_minor == 220_000
    assert team_a.wape == pytest.approx(3 / 11)
    assert team_a.error_ratio == pytest.approx(1 / 11)
    assert rows["east/team-b"].forecast_amount.amount_minor == 60_000


async def test_the_earlier_lock_and_the_weighted_basis(march: Pipeline) -> None:
    early = await accuracy(march, as_of_date=date_proto(date(2025, 3, 10)))
    assert early.total.lock_point == forecast_pb2.LOCK_POINT_WEEK_1
    assert early.total.forecast_amount.amount_minor == 250_000 and early.total.calls_missing == 3
    weighted = await accuracy(
        march, basis=forecast_pb2.FORECAST_BASIS_WEIGHTED, group_by=types_pb2.ORG_LEVEL_REP
    )
    # System weighted at the lock: 10 % of 150,000 | 30 % of 80,000 + 10 % of 40,000 | 10 % of 60,000.
    got = {r.key: r.forecast_amount.amount_minor for r in weighted.rows}
    assert got == {"rep-a1": 15_000, "rep-a2": 28_000, "rep-b1": 6_000}
    assert weighted.total.calls_missing == 0 and not weighted.total.HasField("adjustment_value")


async def test_each_role_sees_its_scope_and_another_tenant_has_no_lock(march: Pipeline) -> None:
    sup = await accuracy(march, "sup-a", group_by=types_pb2.ORG_LEVEL_REP)
    assert [r.key for r in sup.rows] == ["rep-a1", "rep-a2"]
    assert sup.total.forecast_amount.amount_minor == 260_000
    rep = await accuracy(march, "rep-b1", group_by=types_pb2.ORG_LEVEL_REP)
    assert [r.key for r in rep.rows] == ["rep-b1"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await accuracy(march, "rep-a1", scope=types_pb2.OrgScope(org_path="east/team-b"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        req = pb.GetForecastAccuracyRequest(period=period())
        await march.call("GetForecastAccuracy", req, tenant="acme")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_bad_requests_are_invalid_argument(march: Pipeline) -> None:
    for req in (
        pb.GetForecastAccuracyRequest(),
        pb.GetForecastAccuracyRequest(period=period(), group_by=99),  # type: ignore[arg-type]
        pb.GetForecastAccuracyRequest(period=period(), basis=99),  # type: ignore[arg-type]
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await march.call("GetForecastAccuracy", req)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_frozen_commit_deal_is_out_of_the_locked_commit(pipeline: Pipeline) -> None:
    """rep-a1 has two COMMIT deals closing in March: F1 (100,000, confirmed 03-12) and F2 (50,000,
    never updated since 03-01). The weekly freeze of Friday 03-14 18:00 (Shanghai) freezes F2 (its
    last update is before the window opened on 03-07), so the lock of 03-25 holds 100,000 of commit."""
    from services.pipeline import closing, discipline

    tx = transactions(pipeline.db)
    rep, admin = who("rep-a1"), who("admin")
    h = seed_history
    for p in seed.profiles(DEMO_USERS):
        save = partial(
            members.update_profile, who=admin, incoming=p, mask=FieldMask(), allow_missing=True, at=at(1)
        )
        await tx.run(T, save)
    for deal_id, amount in (("F1", 100_000), ("F2", 50_000)):
        await tx.run(T, h.create(rep, deal(deal_id, "rep-a1", amount))(at(1)))
        await tx.run(T, h.update(rep, deal_id, category="COMMIT")(at(1, hour=3)))

    async def confirm(uow: Any) -> Any:
        return await closing.confirm_deal(uow, rep, pb.ConfirmDealRequest(deal_id="F1"), at(12))

    await tx.run(T, confirm)
    frozen = await tx.run(T, lambda uow: discipline.freeze_overdue(uow, at(15, hour=12)))
    assert frozen == 1
    await tx.run(T, h.lock(admin, MARCH, acc.LockPoint.LAST_WEEK)(at(25, hour=12)))
    resp = await accuracy(pipeline, group_by=types_pb2.ORG_LEVEL_REP)
    [row] = resp.rows
    assert row.locked_commit_amount.amount_minor == 100_000
    assert row.forecast_amount.amount_minor == 100_000 and row.calls_missing == 1  # the system commit


async def test_the_total_is_labelled_with_the_viewers_actual_scope(march: Pipeline) -> None:
    """The total names what its figures cover (as GetWonRevenue's): a supervisor's team, a director's
    region, a rep's own deals, the company only for tenant-wide viewers."""
    expect = {
        "sup-a": (types_pb2.ORG_LEVEL_TEAM, "east/team-a", "east/team-a", 260_000),
        "director-east": (types_pb2.ORG_LEVEL_REGION, "east", "east", 320_000),
        "admin": (types_pb2.ORG_LEVEL_COMPANY, "", "company", 320_000),
        "rep-a1": (types_pb2.ORG_LEVEL_REP, "rep-a1", "Rep A1", 150_000),
    }
    for user, (level, key, name, forecast) in expect.items():
        total = (await accuracy(march, user)).total
        assert (total.level, total.key, total.display_name) == (level, key, name), user
        assert total.forecast_amount.amount_minor == forecast, user
    # A supervisor's default rows are the team's reps, not one "east" row holding the team's figures.
    assert [r.key for r in (await accuracy(march, "sup-a")).rows] == ["rep-a1", "rep-a2"]
    asked = (await accuracy(march, "director-east", scope=types_pb2.OrgScope(org_path="east"))).total
    assert (asked.level, asked.key) == (types_pb2.ORG_LEVEL_REGION, "east")
    one = (await accuracy(march, "sup-a", scope=types_pb2.OrgScope(user_ids=["rep-a2"]))).total
    assert (one.level, one.key, one.display_name) == (types_pb2.ORG_LEVEL_REP, "rep-a2", "Rep A2")
    assert one.forecast_amount.amount_minor == 110_000
