"""OWASP API1 (object-level authorisation) in leads: no response path shows a lead, activity,
phone or rep profile past the caller's org scope."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2

from kit.events import unpack_payload
from salesops.leads.v1 import activity_pb2, enums_pb2, events_pb2, lead_pb2, policies_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from tests.leads.conftest import Leads
from tests.leads.helpers import configure, events, hot_lead
from tests.leads.test_api import call_activity

SECRET = "budget approved by the CFO, competitor quote at 1.2M"


def secret_lead(lead_id: str, phone: str, **kw: object) -> lead_pb2.Lead:
    lead = hot_lead(lead_id, phone=phone, email=f"{lead_id.lower()}@secret.cn", **kw)  # type: ignore[arg-type]
    lead.description = SECRET
    return lead


def assert_nothing_of(lead: lead_pb2.Lead) -> None:
    assert lead.description == ""
    assert lead.owner_user_id == "" and lead.team_path == ""
    assert lead.contact.email == "" and lead.contact.phone == ""
    assert not lead.recent_intakes and not lead.company.name


async def test_create_replay_with_another_teams_lead_id_reveals_nothing(leads: Leads) -> None:
    await configure(leads)
    first = await leads.call("CreateLead", pb.CreateLeadRequest(lead=secret_lead("TEAM-A-1", "13800000301")))
    assert first.lead.owner_user_id.startswith("rep-a")
    # A team-b rep replays the id with made-up data: the idempotent replay must not answer team-a's lead.
    probe = hot_lead("TEAM-A-1", phone="13900000302", company="Probe Ltd")
    res = await leads.call("CreateLead", pb.CreateLeadRequest(lead=probe), user="rep-b1")
    assert res.replayed
    assert_nothing_of(res.lead)
    assert res.lead_hidden


async def test_dedupe_merge_into_an_unseen_lead_says_so_and_nothing_else(leads: Leads) -> None:
    await configure(leads)
    await leads.call("CreateLead", pb.CreateLeadRequest(lead=secret_lead("TEAM-A-2", "13800000311")))
    res = await leads.call(
        "CreateLead",
        pb.CreateLeadRequest(lead=hot_lead("PROBE-2", phone="13800000311", company="Probe Ltd")),
        user="rep-b1",
    )
    assert res.outcome == pb.INTAKE_OUTCOME_MERGED
    assert res.lead_hidden and res.lead.lead_id == ""  # not even which lead
    assert_nothing_of(res.lead)
    # The owner's management line still sees the merge in full.
    sup = await leads.call(
        "CreateLead",
        pb.CreateLeadRequest(lead=hot_lead("PROBE-3", phone="13800000311", company="Other")),
        user="sup-a",
    )
    assert sup.outcome == pb.INTAKE_OUTCOME_MERGED and not sup.lead_hidden
    assert sup.lead.lead_id == "TEAM-A-2" and sup.lead.description == SECRET


async def test_activity_replay_with_another_activitys_id_returns_no_notes(leads: Leads) -> None:
    await configure(leads)
    a = (
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("ACT-A", phone="13800000321")))
    ).lead
    b = (
        await leads.call(
            "CreateLead",
            pb.CreateLeadRequest(lead=hot_lead("ACT-B", phone="13800000322", budget=10_000_000)),
        )
    ).lead
    assert a.owner_user_id.startswith("rep-a") and b.owner_user_id.startswith("rep-b")
    private = call_activity(activity_id="ACT-PRIVATE", summary=SECRET)
    await leads.call(
        "CreateActivity", pb.CreateActivityRequest(lead_id="ACT-A", activity=private), user=a.owner_user_id
    )
    probe = call_activity(activity_id="ACT-PRIVATE", summary="probe")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call(
            "CreateActivity", pb.CreateActivityRequest(lead_id="ACT-B", activity=probe), user=b.owner_user_id
        )
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert SECRET not in (err.value.details() or "")
    # The real replay (same lead, same rep) still answers the stored activity.
    again = await leads.call(
        "CreateActivity", pb.CreateActivityRequest(lead_id="ACT-A", activity=private), user=a.owner_user_id
    )
    assert again.activity.activity_id == "ACT-PRIVATE" and again.activity.summary == SECRET


async def test_phone_filter_is_no_oracle_for_masked_pool_phones(leads: Leads) -> None:
    await configure(leads)
    cold = hot_lead("POOL-1", phone="13800000331", budget=100_000_00, channel=1)  # grade C: claim only
    created = (await leads.call("CreateLead", pb.CreateLeadRequest(lead=cold))).lead
    assert created.status == lead_pb2.LEAD_STATUS_IN_POOL
    seen = await leads.call("ListLeads", pb.ListLeadsRequest(), user="rep-b1")
    pooled = [lead for lead in seen.leads if lead.lead_id == "POOL-1"]
    assert pooled and pooled[0].contact.phone_masked  # the rep sees the pool lead, masked
    for guess in ("13800000331", "13800000332"):
        hits = await leads.call(
            "ListLeads", pb.ListLeadsRequest(filter=pb.LeadFilter(phone=guess)), user="rep-b1"
        )
        assert list(hits.leads) == [] and hits.total_size == 0
    # Those who may see the phone still find the lead by it.
    found = await leads.call("ListLeads", pb.ListLeadsRequest(filter=pb.LeadFilter(phone="13800000331")))
    assert [lead.lead_id for lead in found.leads] == ["POOL-1"]


async def test_display_name_made_of_the_phone_is_masked_too(leads: Leads) -> None:
    await configure(leads)
    bare = lead_pb2.Lead(
        lead_id="BARE-1",
        contact=lead_pb2.LeadContact(phone="13800000341"),
        source=lead_pb2.LeadSource(channel=enums_pb2.LEAD_CHANNEL_WEB_FORM),
    )
    await leads.call("CreateLead", pb.CreateLeadRequest(lead=bare))
    seen = await leads.call("GetLead", pb.GetLeadRequest(lead_id="BARE-1"), user="rep-b1")
    assert seen.lead.contact.phone_masked
    assert "13800000341" not in seen.lead.display_name
    # Events leave the service for other readers: their lead context masks it as well.
    (created,) = await events(leads.db, "leads.LeadCreated")
    assert "13800000341" not in unpack_payload(created[1], events_pb2.LeadCreated).lead.display_name


async def test_duplicate_candidates_name_only_leads_the_viewer_may_see(leads: Leads) -> None:
    await configure(leads)
    await leads.call("CreateLead", pb.CreateLeadRequest(lead=secret_lead("DUP-A", "13800000351")))
    b = (
        await leads.call(  # grade B, same company: team B's lead, flagged as a possible duplicate of DUP-A
            "CreateLead", pb.CreateLeadRequest(lead=hot_lead("DUP-B", phone="13800000352", budget=10_000_000))
        )
    ).lead
    assert b.owner_user_id.startswith("rep-b")
    admin_view = (await leads.call("GetLead", pb.GetLeadRequest(lead_id="DUP-B"))).lead
    assert "DUP-A" in [c.lead_id for c in admin_view.duplicate_candidates]
    for user in (b.owner_user_id, "sup-b"):
        seen = (await leads.call("GetLead", pb.GetLeadRequest(lead_id="DUP-B"), user=user)).lead
        assert seen.duplicate_review_needed
        assert "DUP-A" not in [c.lead_id for c in seen.duplicate_candidates]


async def test_rep_profiles_of_other_teams_are_not_readable_by_reps(leads: Leads) -> None:
    await configure(leads)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call("GetRepProfile", pb.GetRepProfileRequest(user_id="rep-b1"), user="rep-a1")
    assert err.value.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call("ListRepProfiles", pb.ListRepProfilesRequest(team_path="east/team-b"), user="rep-a1")
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    own_team = await leads.call("ListRepProfiles", pb.ListRepProfilesRequest(), user="rep-a1")
    assert {p.user_id for p in own_team.rep_profiles} == {f"rep-a{n}" for n in range(1, 5)}
    mine = await leads.call("GetRepProfile", pb.GetRepProfileRequest(user_id="me"), user="rep-b1")
    assert mine.rep_profile.user_id == "rep-b1"
    # Supervisors read their team, the director the region.
    await leads.call("GetRepProfile", pb.GetRepProfileRequest(user_id="rep-b1"), user="sup-b")
    await leads.call("GetRepProfile", pb.GetRepProfileRequest(user_id="rep-b1"), user="director-east")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call("GetRepProfile", pb.GetRepProfileRequest(user_id="rep-b1"), user="sup-a")
    assert err.value.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND)


__all__ = ["activity_pb2"]


async def test_query_filter_is_no_oracle_for_a_masked_phone_in_the_display_name(leads: Leads) -> None:
    """A lead known only by its number is named by it: `filter.query` must not match the masked digits."""
    await configure(leads)
    bare = lead_pb2.Lead(
        lead_id="BARE-Q",
        contact=lead_pb2.LeadContact(phone="13800000361"),
        source=lead_pb2.LeadSource(channel=enums_pb2.LEAD_CHANNEL_WEB_FORM),
    )
    await leads.call("CreateLead", pb.CreateLeadRequest(lead=bare))
    seen = (await leads.call("GetLead", pb.GetLeadRequest(lead_id="BARE-Q"), user="rep-b1")).lead
    assert seen.status == lead_pb2.LEAD_STATUS_IN_POOL and seen.contact.phone_masked
    for guess in ("13800000361", "0000036", "+8613800000361"):
        hits = await leads.call(
            "ListLeads", pb.ListLeadsRequest(filter=pb.LeadFilter(query=guess)), user="rep-b1"
        )
        assert list(hits.leads) == [] and hits.total_size == 0, guess
    # Whoever sees the phone still finds the lead by it.
    found = await leads.call("ListLeads", pb.ListLeadsRequest(filter=pb.LeadFilter(query="0000036")))
    assert [lead.lead_id for lead in found.leads] == ["BARE-Q"]


async def test_duplicate_candidate_named_by_a_masked_phone_is_masked_too(leads: Leads) -> None:
    """With FLAG dedupe, two phone-only pool leads name each other as candidates: by the masked number."""
    await configure(leads)
    policy = policies_pb2.IntakePolicy(exact_match_action=policies_pb2.DEDUPE_ACTION_FLAG)
    await leads.call(
        "UpdateIntakePolicy",
        pb.UpdateIntakePolicyRequest(
            intake_policy=policy, update_mask=field_mask_pb2.FieldMask(paths=["exact_match_action"])
        ),
    )
    for lead_id in ("BARE-D1", "BARE-D2"):
        bare = lead_pb2.Lead(
            lead_id=lead_id,
            contact=lead_pb2.LeadContact(phone="13800000371"),
            source=lead_pb2.LeadSource(channel=enums_pb2.LEAD_CHANNEL_WEB_FORM),
        )
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=bare))
    seen = (await leads.call("GetLead", pb.GetLeadRequest(lead_id="BARE-D2"), user="rep-b1")).lead
    assert seen.contact.phone_masked
    assert [c.lead_id for c in seen.duplicate_candidates] == ["BARE-D1"]
    assert all("13800000371" not in c.display_name for c in seen.duplicate_candidates)
    admin = (await leads.call("GetLead", pb.GetLeadRequest(lead_id="BARE-D2"))).lead
    assert "13800000371" in admin.duplicate_candidates[0].display_name
