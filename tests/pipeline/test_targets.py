"""Targets over real gRPC: the company -> region -> team -> rep cascade with attrition against a
hand-computed fixture (100 -> 92 -> 85 -> 76), sign rules, audit and access (hand-downs: test_targets_handdown)."""

from __future__ import annotations

from datetime import date

import grpc
import pytest
from google.type import date_pb2  # type: ignore[import-untyped]
from sqlalchemy import select

from deploy.local.demo import DEMO_USERS
from kit.events import parse_envelope, unpack_payload
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import events_pb2, target_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import seed as demo
from services.pipeline.store import outbox
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import mask, refused

YEAR = date.today().year + 1
QUARTER = types_pb2.SalesPeriod(
    granularity=types_pb2.PERIOD_GRANULARITY_QUARTER, start_date=date_pb2.Date(year=YEAR, month=2, day=14)
)
COMPANY, REGION, TEAM, REP = (
    types_pb2.ORG_LEVEL_COMPANY,
    types_pb2.ORG_LEVEL_REGION,
    types_pb2.ORG_LEVEL_TEAM,
    types_pb2.ORG_LEVEL_REP,
)


def cny(minor: int) -> Money:
    return Money(amount_minor=minor, currency="CNY")


def target(
    target_id: str,
    level: types_pb2.OrgLevel.ValueType,
    committed: int,
    *,
    org: str = "",
    user: str = "",
    assigned: int | None = None,
    challenge: int | None = None,
    period: types_pb2.SalesPeriod = QUARTER,
) -> target_pb2.Target:
    msg = target_pb2.Target(
        target_id=target_id,
        period=period,
        level=level,
        org_path=org,
        user_id=user,
        committed_amount=cny(committed),
    )
    if assigned is not None:
        msg.assigned_amount.CopyFrom(cny(assigned))
    if challenge is not None:
        msg.challenge_amount.CopyFrom(cny(challenge))
    return msg


async def profiles(p: Pipeline) -> None:
    for prof in demo.profiles(DEMO_USERS):
        await p.call(
            "UpdateMemberProfile", pb.UpdateMemberProfileRequest(member_profile=prof, allow_missing=True)
        )


async def put(p: Pipeline, t: target_pb2.Target, user: str = "admin") -> target_pb2.Target:
    made: target_pb2.Target = (
        await p.call("CreateTarget", pb.CreateTargetRequest(target=t), user=user)
    ).target
    return made


async def cascade_fixture(p: Pipeline) -> dict[str, target_pb2.Target]:
    """Company 100 -> region 92 -> teams 45 + 40 = 85 -> reps 20 + 20 + 18 + 18 = 76 (thousands).

    Team B's reps get their targets before team B does: team B's target then adopts them.
    """
    await profiles(p)
    made = {
        "co": await put(p, target("co", COMPANY, 100_000, challenge=110_000)),
        "east": await put(p, target("east", REGION, 92_000, org="east", assigned=100_000, challenge=100_000)),
        "ta": await put(
            p, target("ta", TEAM, 45_000, org="east/team-a", assigned=50_000), user="director-east"
        ),
        "a1": await put(p, target("a1", REP, 20_000, user="rep-a1"), user="sup-a"),
        "a2": await put(p, target("a2", REP, 20_000, user="rep-a2"), user="sup-a"),
        "b1": await put(p, target("b1", REP, 18_000, user="rep-b1"), user="director-east"),
        "b2": await put(p, target("b2", REP, 18_000, user="rep-b2"), user="director-east"),
    }
    assert made["b1"].parent_target_id == "east"  # no team target yet: under the region
    made["tb"] = await put(
        p, target("tb", TEAM, 40_000, org="east/team-b", assigned=50_000), user="director-east"
    )
    return made


async def get(p: Pipeline, target_id: str, user: str = "admin") -> target_pb2.Target:
    got: target_pb2.Target = (
        await p.call("GetTarget", pb.GetTargetRequest(target_id=target_id), user=user)
    ).target
    return got


async def test_the_cascade_shows_attrition_level_by_level(pipeline: Pipeline) -> None:
    made = await cascade_fixture(pipeline)
    assert (made["co"].owner_user_id, made["east"].owner_user_id) == ("admin", "director-east")
    assert (made["ta"].owner_user_id, made["a1"].owner_user_id, made["a1"].org_path) == (
        "sup-a",
        "rep-a1",
        "east/team-a",
    )
    assert made["a1"].status == target_pb2.TARGET_STATUS_ASSIGNED
    assert made["a1"].assigned_amount.amount_minor == 20_000  # defaults to the committed amount
    assert (made["co"].period.start_date.month, made["co"].period.end_date.month) == (1, 3)
    assert (await get(pipeline, "b1")).parent_target_id == "tb"  # adopted by the team target
    assert (made["east"].parent_target_id, made["ta"].parent_target_id) == ("co", "east")

    c = (await pipeline.call("GetTargetCascade", pb.GetTargetCascadeRequest(period=QUARTER))).cascade
    root = c.root
    assert root.target.target_id == "co" and root.display_name == "company"
    assert root.children_committed_amount.amount_minor == 92_000
    assert root.attrition_ratio == pytest.approx(0.08)
    region = root.children[0]
    assert (region.target.target_id, region.children_committed_amount.amount_minor) == ("east", 85_000)
    assert region.attrition_ratio == pytest.approx(1 - 85 / 92)
    teams = {n.target.target_id: n for n in region.children}
    assert teams["ta"].children_committed_amount.amount_minor == 40_000
    assert teams["ta"].attrition_ratio == pytest.approx(1 - 40 / 45)
    assert teams["tb"].attrition_ratio == pytest.approx(1 - 36 / 40)
    assert [n.display_name for n in teams["ta"].children] == ["Rep A1", "Rep A2"]
    leaf = teams["ta"].children[0]
    assert not leaf.HasField("attrition_ratio") and not leaf.children
    assert [
        (types_pb2.OrgLevel.Name(lv.level), lv.committed_amount.amount_minor, round(lv.retained_ratio, 4))
        for lv in c.levels
    ] == [
        ("ORG_LEVEL_COMPANY", 100_000, 1.0),
        ("ORG_LEVEL_REGION", 92_000, 0.92),
        ("ORG_LEVEL_TEAM", 85_000, 0.85),
        ("ORG_LEVEL_REP", 76_000, 0.76),
    ]
    assert c.levels[0].challenge_amount.amount_minor == 110_000

    shallow = (
        await pipeline.call("GetTargetCascade", pb.GetTargetCascadeRequest(period=QUARTER, depth=1))
    ).cascade
    assert [n.target.target_id for n in shallow.root.children] == ["east"]
    assert not shallow.root.children[0].children
    assert shallow.root.children[0].children_committed_amount.amount_minor == 85_000

    # A supervisor's cascade is their team's; a rep's is their own target; nobody's in another tenant.
    team = (
        await pipeline.call("GetTargetCascade", pb.GetTargetCascadeRequest(period=QUARTER), user="sup-a")
    ).cascade
    assert team.root.target.target_id == "ta"
    assert [n.target.target_id for n in team.root.children] == ["a1", "a2"]
    mine = (
        await pipeline.call("GetTargetCascade", pb.GetTargetCascadeRequest(period=QUARTER), user="rep-a1")
    ).cascade
    assert mine.root.target.target_id == "a1" and not mine.root.children
    await refused(
        pipeline.call(
            "GetTargetCascade",
            pb.GetTargetCascadeRequest(period=QUARTER, org_path="east/team-b"),
            user="sup-a",
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await refused(
        pipeline.call("GetTargetCascade", pb.GetTargetCascadeRequest(period=QUARTER), tenant="acme"),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_only_the_assignee_signs_and_a_change_voids_the_signature(pipeline: Pipeline) -> None:
    await cascade_fixture(pipeline)
    sign = pb.SignTargetRequest(target_id="a1", committed_amount=cny(20_000), statement="two renewals + X")
    for other in ("sup-a", "admin", "director-east"):
        await refused(pipeline.call("SignTarget", sign, user=other), grpc.StatusCode.PERMISSION_DENIED)
    await refused(pipeline.call("SignTarget", sign, user="rep-a2"), grpc.StatusCode.NOT_FOUND)
    await refused(pipeline.call("SignTarget", sign, tenant="acme", user="rep-a1"), grpc.StatusCode.NOT_FOUND)
    wrong = pb.SignTargetRequest(target_id="a1", committed_amount=cny(19_000))
    status = await refused(pipeline.call("SignTarget", wrong, user="rep-a1"))
    assert "COMMITTED_AMOUNT_CHANGED" in str(status)
    stale = pb.SignTargetRequest(target_id="a1", committed_amount=cny(20_000), etag="7")
    await refused(pipeline.call("SignTarget", stale, user="rep-a1"), grpc.StatusCode.ABORTED)

    signed = (await pipeline.call("SignTarget", sign, user="rep-a1")).target
    assert signed.status == target_pb2.TARGET_STATUS_COMMITTED
    assert (signed.signature.signer_user_id, signed.signature.signed_amount.amount_minor) == (
        "rep-a1",
        20_000,
    )
    assert signed.signature.statement == "two renewals + X" and signed.etag == "2"
    again = (await pipeline.call("SignTarget", sign, user="rep-a1")).target
    assert again.etag == "2"  # signing twice changes nothing

    # The rep cannot change their own target; the supervisor can, which voids the signature.
    raise_it = target_pb2.Target(target_id="a1", committed_amount=cny(21_000), etag="2")
    request = pb.UpdateTargetRequest(target=raise_it, update_mask=mask("committed_amount"))
    await refused(pipeline.call("UpdateTarget", request, user="rep-a1"), grpc.StatusCode.PERMISSION_DENIED)
    # 21 + 20 = 41 is within team A's 45.
    changed = (await pipeline.call("UpdateTarget", request, user="sup-a")).target
    assert changed.status == target_pb2.TARGET_STATUS_ASSIGNED and not changed.HasField("signature")
    await refused(
        pipeline.call("UpdateTarget", request, user="sup-a"), grpc.StatusCode.ABORTED
    )  # etag 2 is stale
    await refused(
        pipeline.call(
            "UpdateTarget",
            pb.UpdateTargetRequest(
                target=target_pb2.Target(target_id="a1", owner_user_id="sup-a"),
                update_mask=mask("owner_user_id"),
            ),
            user="sup-a",
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    resign = pb.SignTargetRequest(target_id="a1", committed_amount=cny(21_000))
    assert (
        await pipeline.call("SignTarget", resign, user="rep-a1")
    ).target.signature.signed_amount.amount_minor == 21_000
    # The supervisor signs the team's target (the owner the member profiles name).
    team = pb.SignTargetRequest(target_id="ta", committed_amount=cny(45_000))
    assert (
        await pipeline.call("SignTarget", team, user="sup-a")
    ).target.status == target_pb2.TARGET_STATUS_COMMITTED

    async with pipeline.db.engine.connect() as conn:
        events = (
            await conn.execute(
                select(outbox.c.envelope)
                .where(outbox.c.type == "pipeline.TargetSigned")
                .order_by(outbox.c.id)
            )
        ).all()
    audit = (
        await pipeline.call("ListTargetChanges", pb.ListTargetChangesRequest(target_id="a1"), user="rep-a1")
    ).changes
    assert [
        (
            target_pb2.TargetChangeAction.Name(c.action).removeprefix("TARGET_CHANGE_ACTION_"),
            c.changed_by,
            c.new_value,
        )
        for c in audit
    ] == [
        ("CREATED", "sup-a", "20000"),
        ("SIGNED", "rep-a1", "20000"),
        ("UPDATED", "sup-a", "21000"),
        ("SIGNATURE_VOIDED", "sup-a", "ASSIGNED"),
        ("SIGNED", "rep-a1", "21000"),
    ]
    assert (audit[2].field, audit[2].old_value) == ("committed_amount", "20000")
    for user, tenant in (("rep-a2", "demo"), ("admin", "acme")):
        await refused(
            pipeline.call(
                "ListTargetChanges", pb.ListTargetChangesRequest(target_id="a1"), user=user, tenant=tenant
            ),
            grpc.StatusCode.NOT_FOUND,
        )
    signed_events = [unpack_payload(parse_envelope(e), events_pb2.TargetSigned) for (e,) in events]
    assert [(e.target_id, e.signer_user_id, e.committed_amount.amount_minor) for e in signed_events] == [
        ("a1", "rep-a1", 20_000),
        ("a1", "rep-a1", 21_000),
        ("ta", "sup-a", 45_000),
    ]
    assert signed_events[0].level == REP and signed_events[0].org_path == "east/team-a"


async def test_who_sees_and_hands_down_which_targets(pipeline: Pipeline) -> None:
    await cascade_fixture(pipeline)

    async def listed(user: str, tenant: str = "demo", **kw: object) -> list[str]:
        req = pb.ListTargetsRequest(filter=pb.TargetFilter(**kw), page_size=3)  # type: ignore[arg-type]
        ids: list[str] = []
        while True:
            resp = await pipeline.call("ListTargets", req, user=user, tenant=tenant)
            ids += [t.target_id for t in resp.targets]
            if not resp.next_page_token:
                return ids
            req.page_token = resp.next_page_token

    assert await listed("admin") == ["co", "east", "ta", "a1", "a2", "tb", "b1", "b2"]
    assert await listed("director-east") == ["east", "ta", "a1", "a2", "tb", "b1", "b2"]
    assert await listed("sup-a") == ["ta", "a1", "a2"]
    assert await listed("rep-a1") == ["a1"]
    assert await listed("admin", tenant="acme") == []
    assert await listed("admin", level=REP, org_path="east/team-b") == ["b1", "b2"]
    assert await listed("admin", statuses=[target_pb2.TARGET_STATUS_COMMITTED]) == []
    assert (
        await listed(
            "admin",
            period=types_pb2.SalesPeriod(
                granularity=types_pb2.PERIOD_GRANULARITY_QUARTER,
                start_date=date_pb2.Date(year=YEAR, month=5, day=1),
            ),
        )
        == []
    )

    assert (await get(pipeline, "a1", user="rep-a1")).target_id == "a1"
    for user, tid in (
        ("rep-a1", "a2"),
        ("rep-a1", "ta"),
        ("sup-a", "b1"),
        ("sup-a", "east"),
        ("director-east", "co"),
    ):
        await refused(
            pipeline.call("GetTarget", pb.GetTargetRequest(target_id=tid), user=user),
            grpc.StatusCode.NOT_FOUND,
        )
    await refused(
        pipeline.call("GetTarget", pb.GetTargetRequest(target_id="a1"), tenant="acme"),
        grpc.StatusCode.NOT_FOUND,
    )
    # Handing down: a rep never; a supervisor for their own reps, not their own unit nor another team.
    for user, msg in (
        ("rep-a1", target("n1", REP, 1, user="rep-a3")),
        ("sup-a", target("n2", REP, 1, user="rep-b3")),
        (
            "sup-a",
            target(
                "n3",
                TEAM,
                1,
                org="east/team-a",
                period=types_pb2.SalesPeriod(
                    granularity=types_pb2.PERIOD_GRANULARITY_YEAR, start_date=QUARTER.start_date
                ),
            ),
        ),
        (
            "director-east",
            target(
                "n4",
                REGION,
                1,
                org="east",
                period=types_pb2.SalesPeriod(
                    granularity=types_pb2.PERIOD_GRANULARITY_YEAR, start_date=QUARTER.start_date
                ),
            ),
        ),
    ):
        await refused(
            pipeline.call("CreateTarget", pb.CreateTargetRequest(target=msg), user=user),
            grpc.StatusCode.PERMISSION_DENIED,
        )
    upd = pb.UpdateTargetRequest(
        target=target_pb2.Target(target_id="ta", committed_amount=cny(1)),
        update_mask=mask("committed_amount"),
    )
    await refused(pipeline.call("UpdateTarget", upd, user="sup-a"), grpc.StatusCode.PERMISSION_DENIED)
    await refused(pipeline.call("UpdateTarget", upd, user="sup-b"), grpc.StatusCode.NOT_FOUND)
    await refused(pipeline.call("UpdateTarget", upd, tenant="acme"), grpc.StatusCode.NOT_FOUND)
