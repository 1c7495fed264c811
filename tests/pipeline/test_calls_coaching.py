"""The coaching view a new rep sees before submitting, over real gRPC, on a hand-worked team.

Team east/team-a: rep-a1 and rep-a2 started in 2020 (peers), rep-a3 two months ago (coaching).
Peers' deals, all created on day B = today - 100 at the same hour (B + n = n days later):

    deal  owner   path                                          outcome
    P1    rep-a1  initial -> needs_confirmed at B+10             won B+40
    P2    rep-a2  initial -> needs_confirmed at B+20             won B+80
    P3    rep-a1  initial                                        lost B+30
    P4    rep-a2  initial                                        won B+60

Cycle (creation to win) of the won: 40, 60, 80 days -> median = p75 = 60 days (nearest rank
below: row (n-1)*p/100 + 1 of 3 = row 2); win ratio 3 won / 4 closed = 0.75.
initial_contact: entered by 4, won 3 (0.75); dwell of the won 10, 20, 60 -> median 20 days;
from it to the win 40, 60, 80 -> median 60 days.
needs_confirmed: entered by 2, won 2 (1.0); dwell 30, 60 -> median 30 days (row 1 of 2).

rep-a3's open deal closing on day C sits at initial contact: peers need 60 more days, so its
peer-typical close date is today + 60 and it is (today + 60 - C) days ahead of the peers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from deploy.local.demo import demo_user
from salesops.common.v1.types_pb2 import Money, Role
from salesops.pipeline.v1 import deal_pb2, forecast_pb2, settings_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import seed_history as h
from services.pipeline.convert import date_proto
from services.pipeline.store import transactions
from tests.pipeline.conftest import Pipeline

DAY = timedelta(days=1)


def who(user: str) -> Any:
    return h.principal(demo_user(user), "demo")


def deal(deal_id: str, owner: str, close: date) -> deal_pb2.Deal:
    return deal_pb2.Deal(
        deal_id=deal_id,
        title=deal_id,
        customer=deal_pb2.DealCustomer(display_name=f"Customer {deal_id}"),
        owner_user_id=owner,
        amount=Money(amount_minor=100_000, currency="CNY"),
        expected_close_date=date_proto(close),
    )


async def profile(
    pipeline: Pipeline, user: str, started: date | None, role: Role.ValueType = Role.ROLE_REP
) -> None:
    u = demo_user(user)
    p = settings_pb2.MemberProfile(
        user_id=user, display_name=u.display_name, org_path=u.org, role=role, active=True
    )
    if started is not None:
        p.start_date.CopyFrom(date_proto(started))
    req = pb.UpdateMemberProfileRequest(member_profile=p, update_mask=FieldMask(), allow_missing=True)
    await pipeline.call("UpdateMemberProfile", req)


@pytest.fixture
async def team(pipeline: Pipeline) -> tuple[Pipeline, date]:
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    await profile(pipeline, "sup-a", date(2019, 1, 1), Role.ROLE_SUPERVISOR)
    await profile(pipeline, "rep-a1", date(2020, 1, 1))
    await profile(pipeline, "rep-a2", date(2020, 1, 1))
    await profile(pipeline, "rep-a3", today - timedelta(days=62))
    tx = transactions(pipeline.db)
    b = datetime.now(UTC).replace(microsecond=0) - 100 * DAY
    far = (b + 200 * DAY).date()
    steps = [
        (b, h.create(who("rep-a1"), deal("P1", "rep-a1", far))),
        (b, h.create(who("rep-a2"), deal("P2", "rep-a2", far))),
        (b, h.create(who("rep-a1"), deal("P3", "rep-a1", far))),
        (b, h.create(who("rep-a2"), deal("P4", "rep-a2", far))),
        (b + 10 * DAY, h.attach(who("rep-a1"), "P1", "meeting_minutes")),
        (b + 10 * DAY, h.move(who("rep-a1"), "P1", "needs_confirmed")),
        (b + 20 * DAY, h.attach(who("rep-a2"), "P2", "meeting_minutes")),
        (b + 20 * DAY, h.move(who("rep-a2"), "P2", "needs_confirmed")),
        (b + 30 * DAY, h.lose(who("rep-a1"), "P3", "PRICE")),
        (b + 40 * DAY, h.win(who("rep-a1"), "P1")),
        (b + 60 * DAY, h.win(who("rep-a2"), "P4")),
        (b + 80 * DAY, h.win(who("rep-a2"), "P2")),
    ]
    for at, step in steps:
        await tx.run("demo", step(at))
    close = today + 20 * DAY
    new = deal("N1", "rep-a3", close)
    new.forecast_category = types_pb2.FORECAST_CATEGORY_COMMIT
    await pipeline.call("CreateDeal", pb.CreateDealRequest(deal=new), user="rep-a3")
    return pipeline, close


def period(day: date) -> types_pb2.SalesPeriod:
    return types_pb2.SalesPeriod(granularity=types_pb2.PERIOD_GRANULARITY_MONTH, start_date=date_proto(day))


async def view(
    pipeline: Pipeline, user: str, day: date, user_id: str = ""
) -> forecast_pb2.ForecastCoachingView:
    req = pb.GetForecastCoachingViewRequest(period=period(day), user_id=user_id)
    return (await pipeline.call("GetForecastCoachingView", req, user=user)).coaching_view  # type: ignore[no-any-return]


async def test_the_view_matches_the_worked_team(team: tuple[Pipeline, date]) -> None:
    pipeline, close = team
    v = await view(pipeline, "rep-a3", close)
    assert v.in_coaching_period and v.tenure_months in (1, 2) and v.user_id == "rep-a3"
    assert (v.peer_org_path, v.peer_count) == ("east/team-a", 2)
    assert v.peer_median_cycle_time.ToTimedelta() == 60 * DAY == v.peer_p75_cycle_time.ToTimedelta()
    assert v.peer_win_ratio == pytest.approx(0.75)
    stages = {s.stage_id: s for s in v.stages}
    first, needs = stages["initial_contact"], stages["needs_confirmed"]
    assert (first.sample_size, first.peer_win_ratio) == (4, 0.75)
    assert first.peer_median_dwell.ToTimedelta() == 20 * DAY
    assert (needs.sample_size, needs.peer_win_ratio) == (2, 1.0)
    assert needs.peer_median_dwell.ToTimedelta() == 30 * DAY
    assert stages["negotiation"].sample_size == 0
    [hint] = v.deals
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    assert hint.deal_id == "N1" and hint.peer_typical_close_date == date_proto(today + 60 * DAY)
    assert hint.days_ahead_of_peers == (today + 60 * DAY - close).days == 40
    assert "consider BEST_CASE rather than COMMIT" in hint.hint


async def test_a_new_rep_submits_after_the_view_and_others_without(team: tuple[Pipeline, date]) -> None:
    pipeline, close = team

    def sub(sid: str, view_id: str = "") -> pb.CreateForecastSubmissionRequest:
        s = forecast_pb2.ForecastSubmission(
            submission_id=sid,
            period=period(close),
            level=types_pb2.ORG_LEVEL_REP,
            commit_amount=Money(amount_minor=50_000, currency="CNY"),
            coaching_view_id=view_id,
        )
        return pb.CreateForecastSubmissionRequest(submission=s)

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await pipeline.call("CreateForecastSubmission", sub("s1"), user="rep-a3")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    shown = await view(pipeline, "rep-a3", close)
    made = (
        await pipeline.call("CreateForecastSubmission", sub("s1", shown.coaching_view_id), user="rep-a3")
    ).submission
    assert made.coached and not made.coaching_view_id
    seasoned = (await pipeline.call("CreateForecastSubmission", sub("s2"), user="rep-a1")).submission
    assert not seasoned.coached
    with pytest.raises(grpc.aio.AioRpcError) as err:  # someone else's view does not count
        await pipeline.call("CreateForecastSubmission", sub("s3", shown.coaching_view_id), user="rep-a1")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_who_may_look(team: tuple[Pipeline, date]) -> None:
    pipeline, close = team
    assert (await view(pipeline, "sup-a", close, "rep-a3")).user_id == "rep-a3"
    for user, tenant in (("rep-a2", "demo"), ("sup-b", "demo"), ("admin", "acme")):
        req = pb.GetForecastCoachingViewRequest(period=period(close), user_id="rep-a3")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pipeline.call("GetForecastCoachingView", req, user=user, tenant=tenant)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    seasoned = await view(pipeline, "rep-a1", close)
    assert not seasoned.in_coaching_period and seasoned.peer_count == 1
