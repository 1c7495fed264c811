"""Member profiles: written by admins and directory sync, read in scope; they place their owners' deals."""

from __future__ import annotations

import grpc
from sqlalchemy import select

from kit.events import parse_envelope, unpack_payload
from salesops.pipeline.v1 import deal_pb2, events_pb2, settings_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline.store import outbox
from tests.pipeline.conftest import MINTER, Pipeline
from tests.pipeline.helpers import create, mask, new_deal, refused

PROFILES = [
    ("rep-a1", "east/team-a", "sup-a", []),
    ("rep-a2", "east/team-a", "sup-a", ["tech_lead"]),
    ("rep-b1", "east/team-b", "sup-b", []),
    ("legal-1", "", "", ["legal"]),
]


def profile(user: str, org: str, manager: str, roles: list[str], **kw: object) -> settings_pb2.MemberProfile:
    return settings_pb2.MemberProfile(
        user_id=user,
        display_name=user.upper(),
        org_path=org,
        manager_user_id=manager,
        approver_roles=roles,
        active=True,
        **kw,  # type: ignore[arg-type]
    )


async def seed(p: Pipeline) -> None:
    for user, org, manager, roles in PROFILES:
        req = pb.UpdateMemberProfileRequest(
            member_profile=profile(user, org, manager, roles), allow_missing=True
        )
        await p.call("UpdateMemberProfile", req)


async def test_profiles_are_written_by_admins_and_directory_sync_only(pipeline: Pipeline) -> None:
    await seed(pipeline)
    missing = pb.UpdateMemberProfileRequest(member_profile=profile("rep-a3", "east/team-a", "sup-a", []))
    await refused(pipeline.call("UpdateMemberProfile", missing), grpc.StatusCode.NOT_FOUND)
    await refused(
        pipeline.call("UpdateMemberProfile", missing, user="sup-a"), grpc.StatusCode.PERMISSION_DENIED
    )
    sync = MINTER.mint("hr-sync", "demo", ["service"], scopes=["directory"])
    upsert = pb.UpdateMemberProfileRequest(
        member_profile=profile("rep-a3", "east/team-a", "sup-a", []), allow_missing=True
    )
    made = await pipeline.call_with(sync, "UpdateMemberProfile", upsert)
    assert made.member_profile.etag == "1" and made.member_profile.audit.updated_by == "hr-sync"
    partner = MINTER.mint("crm-bridge", "demo", ["service"])
    ownerless = pb.CreateDealRequest(deal=new_deal("X9"))
    await refused(pipeline.call_with(partner, "CreateDeal", ownerless), grpc.StatusCode.INVALID_ARGUMENT)
    owned = await pipeline.call_with(
        partner, "CreateDeal", pb.CreateDealRequest(deal=new_deal("X9", owner="rep-a1"))
    )
    assert (owned.deal.org_path, owned.deal.source.origin) == (
        "east/team-a",
        deal_pb2.DEAL_ORIGIN_PARTNER_API,
    )
    plain = MINTER.mint("other-svc", "demo", ["service"])
    await refused(pipeline.call_with(plain, "UpdateMemberProfile", upsert), grpc.StatusCode.PERMISSION_DENIED)

    move = pb.UpdateMemberProfileRequest(
        member_profile=settings_pb2.MemberProfile(user_id="rep-a3", org_path="east/team-b", etag="1"),
        update_mask=mask("org_path"),
    )
    moved = (await pipeline.call("UpdateMemberProfile", move)).member_profile
    assert (moved.org_path, moved.display_name, moved.etag) == ("east/team-b", "REP-A3", "2")
    await refused(pipeline.call("UpdateMemberProfile", move), grpc.StatusCode.ABORTED)
    bad = pb.UpdateMemberProfileRequest(
        member_profile=settings_pb2.MemberProfile(user_id="rep-a3", display_name=" "),
        update_mask=mask("display_name"),
    )
    await refused(pipeline.call("UpdateMemberProfile", bad), grpc.StatusCode.INVALID_ARGUMENT)


async def test_profiles_are_read_in_scope(pipeline: Pipeline) -> None:
    await seed(pipeline)
    team_a = await pipeline.call("ListMemberProfiles", pb.ListMemberProfilesRequest(), user="rep-a1")
    assert [m.user_id for m in team_a.member_profiles] == ["rep-a1", "rep-a2"]
    region = await pipeline.call("ListMemberProfiles", pb.ListMemberProfilesRequest(), user="director-east")
    assert [m.user_id for m in region.member_profiles] == ["rep-a1", "rep-a2", "rep-b1"]
    legal = await pipeline.call(
        "ListMemberProfiles", pb.ListMemberProfilesRequest(approver_role="legal"), user="admin"
    )
    assert [m.user_id for m in legal.member_profiles] == ["legal-1"]
    tech = await pipeline.call(
        "ListMemberProfiles", pb.ListMemberProfilesRequest(approver_role="tech"), user="admin"
    )
    assert not tech.member_profiles  # roles match whole keys
    await refused(
        pipeline.call("GetMemberProfile", pb.GetMemberProfileRequest(user_id="rep-b1"), user="rep-a1"),
        grpc.StatusCode.NOT_FOUND,
    )
    got = await pipeline.call("GetMemberProfile", pb.GetMemberProfileRequest(user_id="rep-b1"), user="sup-b")
    assert got.member_profile.manager_user_id == "sup-b"
    leave = pb.UpdateMemberProfileRequest(
        member_profile=settings_pb2.MemberProfile(user_id="rep-a2", active=False), update_mask=mask("active")
    )
    await pipeline.call("UpdateMemberProfile", leave)
    active = await pipeline.call(
        "ListMemberProfiles", pb.ListMemberProfilesRequest(org_path="east/team-a"), user="admin"
    )
    assert [m.user_id for m in active.member_profiles] == ["rep-a1"]
    everyone = pb.ListMemberProfilesRequest(org_path="east/team-a", include_inactive=True)
    assert len((await pipeline.call("ListMemberProfiles", everyone, user="admin")).member_profiles) == 2


async def test_a_deal_is_placed_in_its_owners_team_and_follows_a_new_owner(pipeline: Pipeline) -> None:
    await seed(pipeline)
    for_b = await create(pipeline, new_deal("P1", owner="rep-b1"), user="director-east")
    assert for_b.org_path == "east/team-b"
    assert (
        await pipeline.call("GetDeal", pb.GetDealRequest(deal_id="P1"), user="sup-b")
    ).deal.deal_id == "P1"
    own = await create(pipeline, new_deal("P2"), user="rep-a1")
    assert own.org_path == "east/team-a"
    give = deal_pb2.Deal(deal_id="P2", owner_user_id="rep-b1")
    # A supervisor cannot hand a deal to another team's rep (that team is outside their org).
    await refused(
        pipeline.call(
            "UpdateDeal", pb.UpdateDealRequest(deal=give, update_mask=mask("owner_user_id")), user="sup-a"
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    moved = await pipeline.call(
        "UpdateDeal", pb.UpdateDealRequest(deal=give, update_mask=mask("owner_user_id")), user="director-east"
    )
    assert (moved.deal.owner_user_id, moved.deal.org_path) == ("rep-b1", "east/team-b")
    await refused(
        pipeline.call("GetDeal", pb.GetDealRequest(deal_id="P2"), user="sup-a"), grpc.StatusCode.NOT_FOUND
    )
    assert (
        await pipeline.call("GetDeal", pb.GetDealRequest(deal_id="P2"), user="sup-b")
    ).deal.org_path == "east/team-b"


async def test_deal_events_name_the_owners_supervisor(pipeline: Pipeline) -> None:
    await seed(pipeline)
    await create(pipeline, new_deal("S1"), user="rep-a1")
    await refused(
        pipeline.call(
            "MoveStage", pb.MoveStageRequest(deal_id="S1", to_stage_id="needs_confirmed"), user="rep-a1"
        )
    )
    async with pipeline.db.engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.type, outbox.c.envelope).order_by(outbox.c.id))).all()
    created = unpack_payload(parse_envelope(rows[0][1]), events_pb2.DealCreated)
    rejected = unpack_payload(parse_envelope(rows[1][1]), events_pb2.DealGateRejected)
    assert [t for t, _ in rows] == ["pipeline.DealCreated", "pipeline.DealGateRejected"]
    assert created.deal.supervisor_user_id == rejected.deal.supervisor_user_id == "sup-a"
    assert [i.key for i in rejected.missing_items] == ["meeting_minutes"]
