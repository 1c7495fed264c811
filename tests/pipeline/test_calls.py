"""Forecast submissions over real gRPC (SQLite and PostgreSQL): a rep's call, a manager's unit call and
adjustment, stored apart from the system figure, idempotent, visible by role, re-homed when the
member moves (audited, never dropped)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from deploy.local.demo import DEMO_USERS
from kit.grpc.errors import status_from_error
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import forecast_pb2, settings_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import seed
from services.pipeline.convert import date_proto
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import bad_fields, new_deal

NEXT_MONTH = (date.today().replace(day=1) + timedelta(days=40)).replace(day=1)


def period(day: date = NEXT_MONTH) -> types_pb2.SalesPeriod:
    return types_pb2.SalesPeriod(granularity=types_pb2.PERIOD_GRANULARITY_MONTH, start_date=date_proto(day))


def submission(sid: str, amount: int, level: str = "REP", **kw: Any) -> forecast_pb2.ForecastSubmission:
    kw.setdefault("period", period())
    return forecast_pb2.ForecastSubmission(
        submission_id=sid,
        level=types_pb2.OrgLevel.Value(f"ORG_LEVEL_{level}"),
        commit_amount=Money(amount_minor=amount, currency="CNY"),
        **kw,
    )


async def submit(
    pipeline: Pipeline, user: str, s: forecast_pb2.ForecastSubmission, tenant: str = "demo"
) -> Any:
    req = pb.CreateForecastSubmissionRequest(submission=s)
    return (await pipeline.call("CreateForecastSubmission", req, user=user, tenant=tenant)).submission


async def listed(pipeline: Pipeline, user: str, **kw: Any) -> list[forecast_pb2.ForecastSubmission]:
    req = pb.ListForecastSubmissionsRequest(**kw)
    return list((await pipeline.call("ListForecastSubmissions", req, user=user)).submissions)


async def code_of(call: Any) -> tuple[grpc.StatusCode, Any]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code(), status_from_error(err.value)


@pytest.fixture
async def org(pipeline: Pipeline) -> Pipeline:
    for p in seed.profiles(DEMO_USERS):
        req = pb.UpdateMemberProfileRequest(
            member_profile=p, update_mask=field_mask_pb2.FieldMask(), allow_missing=True
        )
        await pipeline.call("UpdateMemberProfile", req)
    return pipeline


async def test_a_reps_call_is_stored_beside_the_system_figure_and_replays(org: Pipeline) -> None:
    close = date_proto(NEXT_MONTH + timedelta(days=3))
    await org.call(
        "CreateDeal",
        pb.CreateDealRequest(deal=new_deal("d1", amount=400_000, expected_close_date=close)),
        user="rep-a1",
    )
    made = await submit(org, "rep-a1", submission("s1", 300_000, note="two deals in legal"))
    assert (made.submitter_user_id, made.subject_user_id, made.org_path) == (
        "rep-a1",
        "rep-a1",
        "east/team-a",
    )
    assert made.kind == forecast_pb2.SUBMISSION_KIND_CALL and made.latest
    # The system figure at submit time: 10 % of 400,000 weighted; no COMMIT yet.
    assert (made.system_weighted_amount.amount_minor, made.system_commit_amount.amount_minor) == (40_000, 0)
    assert made.period.end_date.day >= 28 and made.note == "two deals in legal"
    assert [h.field for h in made.history] == ["created"] and made.history[0].changed_by == "rep-a1"
    assert await submit(org, "rep-a1", submission("s1", 300_000, note="two deals in legal")) == made
    code, _ = await code_of(submit(org, "rep-a1", submission("s1", 310_000)))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    newer = await submit(org, "rep-a1", submission("s2", 320_000))
    assert newer.latest
    everything = await listed(org, "rep-a1", period=period())
    assert [(s.submission_id, s.latest) for s in everything] == [("s2", True), ("s1", False)]
    assert [s.submission_id for s in await listed(org, "rep-a1", period=period(), latest_only=True)] == ["s2"]


async def test_bad_submissions_name_every_field(org: Pipeline) -> None:
    bad = submission("x", -5)
    bad.best_case_amount.CopyFrom(Money(amount_minor=1, currency="USD"))
    code, status = await code_of(submit(org, "rep-a1", bad))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    fields = set(bad_fields(status))
    assert {"submission.commit_amount", "submission.best_case_amount.currency"} <= fields
    no_level = forecast_pb2.ForecastSubmission(
        period=period(), commit_amount=Money(amount_minor=1, currency="CNY")
    )
    code, _ = await code_of(submit(org, "rep-a1", no_level))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    no_period = submission("y", 1, period=types_pb2.SalesPeriod())
    code, _ = await code_of(submit(org, "rep-a1", no_period))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    wrong_depth = submission("z", 1, "TEAM", org_path="east/team-a")  # a team of the demo org is 2 segments
    code, _ = await code_of(submit(org, "sup-a", wrong_depth))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_managers_adjust_and_call_only_below_them(org: Pipeline) -> None:
    await submit(org, "rep-a1", submission("c1", 500_000))
    adj = submission(
        "a1",
        420_000,
        kind=forecast_pb2.SUBMISSION_KIND_ADJUSTMENT,
        subject_user_id="rep-a1",
        note="late legal",
    )
    made = await submit(org, "sup-a", adj)
    assert (made.kind, made.subject_user_id, made.submitter_user_id) == (
        forecast_pb2.SUBMISSION_KIND_ADJUSTMENT,
        "rep-a1",
        "sup-a",
    )
    # The rep's call stays beside the adjustment: both are the latest of their kind.
    mine = await listed(org, "rep-a1", period=period(), latest_only=True)
    assert {(s.submission_id, s.kind) for s in mine} == {
        ("c1", forecast_pb2.SUBMISSION_KIND_CALL),
        ("a1", forecast_pb2.SUBMISSION_KIND_ADJUSTMENT),
    }
    for user, sid in (("sup-b", "a2"), ("rep-a2", "a3")):
        s = submission(sid, 1, kind=forecast_pb2.SUBMISSION_KIND_ADJUSTMENT, subject_user_id="rep-a1")
        code, _ = await code_of(submit(org, user, s))
        assert code == grpc.StatusCode.NOT_FOUND
    code, _ = await code_of(submit(org, "rep-a1", submission("c2", 1, subject_user_id="rep-a2")))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    unit = await submit(org, "sup-a", submission("u1", 900_000, "CITY", org_path="east/team-a"))
    assert (unit.org_path, unit.subject_user_id) == ("east/team-a", "")
    code, _ = await code_of(submit(org, "sup-a", submission("u2", 1, "CITY", org_path="east/team-b")))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = await code_of(submit(org, "sup-a", submission("u3", 1, "COMPANY")))
    assert code == grpc.StatusCode.PERMISSION_DENIED


async def test_each_role_lists_its_own_scope_and_another_tenant_nothing(org: Pipeline) -> None:
    await submit(org, "rep-a1", submission("c-a1", 100))
    await submit(org, "rep-b1", submission("c-b1", 200))
    await submit(org, "sup-a", submission("u-a", 300, "CITY", org_path="east/team-a"))
    assert {s.submission_id for s in await listed(org, "rep-a1")} == {"c-a1"}
    assert {s.submission_id for s in await listed(org, "sup-a")} == {"c-a1", "u-a"}
    assert {s.submission_id for s in await listed(org, "director-east")} == {"c-a1", "c-b1", "u-a"}
    assert {s.submission_id for s in await listed(org, "admin", level=types_pb2.ORG_LEVEL_CITY)} == {"u-a"}
    scoped = await listed(org, "admin", scope=types_pb2.OrgScope(org_path="east/team-b"))
    assert {s.submission_id for s in scoped} == {"c-b1"}
    other = await org.call(
        "ListForecastSubmissions", pb.ListForecastSubmissionsRequest(), user="admin", tenant="acme"
    )
    assert list(other.submissions) == []
    pages, token = [], ""
    while True:
        req = pb.ListForecastSubmissionsRequest(page_size=1, page_token=token)
        resp = await org.call("ListForecastSubmissions", req, user="admin")
        pages += [s.submission_id for s in resp.submissions]
        token = resp.next_page_token
        if not token:
            break
    assert sorted(pages) == ["c-a1", "c-b1", "u-a"] and len(pages) == 3


async def test_a_member_moving_teams_takes_their_calls_along(org: Pipeline) -> None:
    await submit(org, "rep-a1", submission("c1", 100))
    adj = submission("a1", 90, kind=forecast_pb2.SUBMISSION_KIND_ADJUSTMENT, subject_user_id="rep-a1")
    await submit(org, "sup-a", adj)
    profile = settings_pb2.MemberProfile(user_id="rep-a1", org_path="east/team-b", manager_user_id="sup-b")
    req = pb.UpdateMemberProfileRequest(
        member_profile=profile, update_mask=field_mask_pb2.FieldMask(paths=["org_path", "manager_user_id"])
    )
    await org.call("UpdateMemberProfile", req)
    moved = {s.submission_id: s for s in await listed(org, "admin", period=period())}
    assert {s.org_path for s in moved.values()} == {"east/team-b"}
    [created, rehomed] = moved["c1"].history
    assert (created.field, rehomed.field) == ("created", "org_path")
    assert (rehomed.old_value, rehomed.new_value, rehomed.changed_by) == (
        "east/team-a",
        "east/team-b",
        "admin",
    )
    assert {s.submission_id for s in await listed(org, "sup-b")} == {"c1", "a1"}
    assert await listed(org, "sup-a") == [moved["a1"]]  # sup-a still sees the adjustment they made
