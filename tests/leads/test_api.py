"""The leads gRPC API on SQLite and PostgreSQL: intake, dedupe, routing, access, pool, follow-ups, closing."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2

from kit.events import unpack_payload
from kit.grpc.errors import status_from_error
from salesops.leads.v1 import activity_pb2, enums_pb2, events_pb2, insights_pb2, lead_pb2, policies_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from tests.leads.conftest import Leads
from tests.leads.helpers import configure, events, hot_lead, mask


def now_ts() -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.GetCurrentTime()
    return t


def call_activity(**kw: object) -> activity_pb2.Activity:
    act = activity_pb2.Activity(
        activity_type=enums_pb2.ACTIVITY_TYPE_CALL,
        outcome=enums_pb2.ACTIVITY_OUTCOME_REACHED,
        next_step=activity_pb2.NextStep(action="send quote", due_date={"year": 2030, "month": 1, "day": 2}),
        occur_time=now_ts(),
    )
    for k, v in kw.items():
        setattr(act, k, v)
    return act


async def test_intake_grades_routes_and_explains(leads: Leads) -> None:
    await configure(leads)
    res = await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("01HOTLEAD")), user="rep-b1")
    lead = res.lead
    assert res.outcome == pb.INTAKE_OUTCOME_CREATED and not res.replayed
    assert lead.contact.phone.startswith("+86138") and lead.contact.phone_masked  # rep-b1 is not the owner
    assert (lead.grade, lead.score) == (enums_pb2.LEAD_GRADE_A, 80)
    assert {r.rule_id for r in lead.grading.fired_rules} == {
        "budget-large",
        "budget-any",
        "call-center",
        "complete-form",
    }
    assert lead.status == lead_pb2.LEAD_STATUS_ASSIGNED and lead.owner_user_id.startswith("rep-a")
    assert lead.first_response.state == lead_pb2.FIRST_RESPONSE_STATE_PENDING
    assert lead.first_response.due_time.seconds > lead.first_response.reminder_time.seconds
    explain = await leads.call(
        "ExplainLeadAssignment", pb.ExplainLeadAssignmentRequest(lead_id="01HOTLEAD"), user="sup-a"
    )
    d = explain.decisions[0]
    assert d.winner_user_id == lead.owner_user_id and d.reason == enums_pb2.ASSIGNMENT_REASON_ROUTED
    assert [(r.rule_id, r.matched) for r in d.rules_tried] == [("east-a", True)]
    assert len(d.candidates) == 4 and d.candidates[0].rank == 1 and "least loaded" in d.summary
    # Same client id again: the same answer, nothing new.
    again = await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("01HOTLEAD")), user="rep-b1")
    assert again.replayed and again.lead.lead_id == "01HOTLEAD"
    assert len(await events(leads.db, "leads.LeadCreated")) == 1
    assigned = await events(leads.db, "leads.LeadAssigned")
    assert len(assigned) == 1
    payload = unpack_payload(assigned[0][1], events_pb2.LeadAssigned)
    assert payload.lead.owner_user_id == lead.owner_user_id and payload.first_response_due_time.seconds


async def test_dedupe_merges_flags_and_never_drops(leads: Leads) -> None:
    first = await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("L1", email="Zhang@ACME.cn")))
    merged = await leads.call(
        "CreateLead", pb.CreateLeadRequest(lead=hot_lead("L2", phone="+86 138-0000-0001", company="other"))
    )
    assert merged.outcome == pb.INTAKE_OUTCOME_MERGED and merged.lead.lead_id == "L1"
    assert merged.lead.intake_count == 2 and merged.lead.recent_intakes[0].intake_id == "L2"
    by_mail = await leads.call(
        "CreateLead", pb.CreateLeadRequest(lead=hot_lead("L3", phone="13900000009", email="zhang@acme.cn"))
    )
    assert by_mail.outcome == pb.INTAKE_OUTCOME_MERGED and by_mail.lead.intake_count == 3
    similar = await leads.call(
        "CreateLead",
        pb.CreateLeadRequest(lead=hot_lead("L4", phone="13900000010", company="ACME Tradin Ltd")),
    )
    assert similar.outcome == pb.INTAKE_OUTCOME_CREATED_FLAGGED
    cand = similar.lead.duplicate_candidates[0]
    assert (
        cand.lead_id == "L1"
        and cand.match_kind == enums_pb2.DUPLICATE_MATCH_KIND_COMPANY_NAME
        and 0.85 <= cand.score < 1
    )
    policy = policies_pb2.IntakePolicy(exact_match_action=policies_pb2.DEDUPE_ACTION_FLAG)
    await leads.call(
        "UpdateIntakePolicy",
        pb.UpdateIntakePolicyRequest(intake_policy=policy, update_mask=mask("exact_match_action")),
    )
    flagged = await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("L5", company="Zenith")))
    assert flagged.outcome == pb.INTAKE_OUTCOME_CREATED_FLAGGED and flagged.lead.duplicate_review_needed
    assert first.lead.lead_id == "L1"
    assert len(await events(leads.db, "leads.LeadMerged")) == 2


async def test_bad_input_is_a_typed_error_with_every_field(leads: Leads) -> None:
    bad = lead_pb2.Lead(contact=lead_pb2.LeadContact(phone="12", email="nope"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=bad))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    detail = error_details_pb2.BadRequest()
    status_from_error(err.value).details[0].Unpack(detail)
    assert {v.field for v in detail.field_violations} == {
        "lead.source.channel",
        "lead.contact.phone",
        "lead.contact.email",
    }


async def test_import_answers_per_row(leads: Leads) -> None:
    rows = [
        pb.ImportLeadRow(row_ref="r1", lead=hot_lead(phone="13800000021")),
        pb.ImportLeadRow(row_ref="r2", lead=hot_lead(phone="138000")),
        pb.ImportLeadRow(row_ref="r3", lead=hot_lead(phone="13800000021", company="x")),
    ]
    req = pb.ImportLeadsRequest(import_id="01IMPORT", rows=rows)
    out = await leads.call("ImportLeads", req)
    assert [r.outcome for r in out.results] == [
        pb.INTAKE_OUTCOME_CREATED,
        pb.INTAKE_OUTCOME_REJECTED,
        pb.INTAKE_OUTCOME_MERGED,
    ]
    assert out.results[1].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert (out.created_count, out.merged_count, out.rejected_count) == (1, 1, 1)
    again = await leads.call("ImportLeads", req)  # idempotent by import id and row
    assert [r.lead_id for r in again.results] == [r.lead_id for r in out.results]
    listed = await leads.call("ListLeads", pb.ListLeadsRequest())
    assert listed.total_size == 1


async def test_access_rules_masking_and_tenant_isolation(leads: Leads) -> None:
    await configure(leads)
    owned = (await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("OWNED")))).lead
    owner = owned.owner_user_id
    pooled = (
        await leads.call(
            "CreateLead",
            pb.CreateLeadRequest(lead=hot_lead("COLD", phone="13800000002", budget=0, channel=1)),
        )
    ).lead
    assert pooled.status == lead_pb2.LEAD_STATUS_IN_POOL and pooled.grade == enums_pb2.LEAD_GRADE_C
    mine = await leads.call("GetLead", pb.GetLeadRequest(lead_id="OWNED"), user=owner)
    assert not mine.lead.contact.phone_masked and mine.lead.contact.phone == "+8613800000001"
    sup = await leads.call("GetLead", pb.GetLeadRequest(lead_id="OWNED"), user="sup-a")
    assert not sup.lead.contact.phone_masked
    pool_view = await leads.call("GetLead", pb.GetLeadRequest(lead_id="COLD"), user="rep-b2")
    assert pool_view.lead.contact.phone == "+86138****0002" and pool_view.lead.caller_can_claim
    for user in ("rep-b2", "sup-b"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await leads.call("GetLead", pb.GetLeadRequest(lead_id="OWNED"), user=user)
        # Out of scope answers as if absent: a different code would confirm the id exists.
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call("GetLead", pb.GetLeadRequest(lead_id="OWNED"), tenant="other")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "+86" not in (err.value.details() or "")
    rep_list = await leads.call("ListLeads", pb.ListLeadsRequest(), user="rep-b2")
    assert [x.lead_id for x in rep_list.leads] == ["COLD"]
    owner_list = await leads.call(
        "ListLeads", pb.ListLeadsRequest(filter=pb.LeadFilter(owner_user_ids=["me"])), user=owner
    )
    assert [x.lead_id for x in owner_list.leads] == ["OWNED"]
    director = await leads.call("ListLeads", pb.ListLeadsRequest(), user="director-east")
    assert director.total_size == 2
    other = await leads.call("ListLeads", pb.ListLeadsRequest(), tenant="other")
    assert other.total_size == 0


async def test_claim_caps_cooldown_and_release(leads: Leads) -> None:
    await configure(leads, pool_cap=2, daily_cap=3, cooldown_days=7)
    for i in range(5):
        await leads.call(
            "CreateLead",
            pb.CreateLeadRequest(lead=hot_lead(f"C{i}", phone=f"1380000010{i}", budget=0, channel=1)),
        )
    claimed = await leads.call("ClaimLead", pb.ClaimLeadRequest(lead_id="C0"), user="rep-a1")
    assert (
        claimed.lead.owner_user_id == "rep-a1"
        and claimed.lead.assignment_reason == enums_pb2.ASSIGNMENT_REASON_CLAIMED
    )
    await leads.call("ClaimLead", pb.ClaimLeadRequest(lead_id="C1"), user="rep-a1")

    async def refused(lead_id: str, user: str) -> set[str]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await leads.call("ClaimLead", pb.ClaimLeadRequest(lead_id=lead_id), user=user)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        detail = error_details_pb2.PreconditionFailure()
        next(d for d in status_from_error(err.value).details if d.Is(detail.DESCRIPTOR)).Unpack(detail)
        return {v.type for v in detail.violations}

    assert await refused("C2", "rep-a1") == {"PRIVATE_LEAD_CAP"}
    released = await leads.call(
        "ReleaseLead", pb.ReleaseLeadRequest(lead_id="C1", note="wrong territory"), user="rep-a1"
    )
    assert released.lead.status == lead_pb2.LEAD_STATUS_IN_POOL
    assert released.lead.pool_entry_reason == enums_pb2.POOL_ENTRY_REASON_RELEASED
    assert await refused("C1", "rep-a1") == {"RECLAIM_COOLDOWN"}
    await leads.call("ClaimLead", pb.ClaimLeadRequest(lead_id="C2"), user="rep-a1")
    await leads.call("ReleaseLead", pb.ReleaseLeadRequest(lead_id="C2"), user="rep-a1")
    assert await refused("C3", "rep-a1") == {"DAILY_CLAIM_CAP"}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call("ClaimLead", pb.ClaimLeadRequest(lead_id="C0"), user="rep-a2")
    assert err.value.code() == grpc.StatusCode.ABORTED
    info = error_details_pb2.ErrorInfo()
    next(d for d in status_from_error(err.value).details if d.Is(info.DESCRIPTOR)).Unpack(info)
    assert info.reason == "ALREADY_CLAIMED" and info.metadata["owner_user_id"] == "rep-a1"


async def test_fifty_concurrent_claims_make_one_owner(leads: Leads) -> None:
    await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("HOT", budget=0, channel=1)))
    reps = [f"rep-{t}{n}" for t in "ab" for n in range(1, 5)]
    users = [reps[i % len(reps)] for i in range(50)]
    results = await asyncio.gather(
        *(leads.call("ClaimLead", pb.ClaimLeadRequest(lead_id="HOT"), user=u) for u in users),
        return_exceptions=True,
    )
    wins = [r for r in results if not isinstance(r, BaseException)]
    losses = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(wins) == 1 and len(losses) == 49
    assert {e.code() for e in losses} == {grpc.StatusCode.ABORTED}
    owner = (await leads.call("GetLead", pb.GetLeadRequest(lead_id="HOT"))).lead.owner_user_id
    assert owner == wins[0].lead.owner_user_id
    assert len(await events(leads.db, "leads.LeadAssigned")) == 1


async def test_manual_reassignment_keeps_trace_and_restarts_clock(leads: Leads) -> None:
    await configure(leads)
    lead = (await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("R1")))).lead
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call(
            "AssignLead",
            pb.AssignLeadRequest(lead_id="R1", assignee_user_id="rep-a4", reason="x"),
            user="rep-a1",
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call(
            "AssignLead", pb.AssignLeadRequest(lead_id="R1", assignee_user_id="rep-a4"), user="sup-a"
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    target = "rep-a4" if lead.owner_user_id != "rep-a4" else "rep-a3"
    out = await leads.call(
        "AssignLead",
        pb.AssignLeadRequest(
            lead_id="R1", assignee_user_id=target, reason="speaks Cantonese", etag=lead.etag
        ),
        user="sup-a",
    )
    assert out.lead.owner_user_id == target and out.decision.note == "speaks Cantonese"
    assert out.lead.first_response.clock_start_time.seconds >= lead.first_response.clock_start_time.seconds
    with pytest.raises(grpc.aio.AioRpcError) as err:  # stale etag
        await leads.call(
            "AssignLead",
            pb.AssignLeadRequest(lead_id="R1", assignee_user_id="rep-a1", reason="r", etag=lead.etag),
            user="sup-a",
        )
    assert err.value.code() == grpc.StatusCode.ABORTED
    history = await leads.call(
        "ExplainLeadAssignment",
        pb.ExplainLeadAssignmentRequest(lead_id="R1", include_history=True),
        user="sup-a",
    )
    assert [d.reason for d in history.decisions] == [
        enums_pb2.ASSIGNMENT_REASON_MANUAL,
        enums_pb2.ASSIGNMENT_REASON_ROUTED,
    ]


async def test_first_contact_stops_the_clock_and_convert_emits(leads: Leads) -> None:
    await configure(leads)
    lead = (await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("F1")))).lead
    owner = lead.owner_user_id
    email = await leads.call(
        "CreateActivity",
        pb.CreateActivityRequest(
            lead_id="F1",
            activity=call_activity(
                activity_type=enums_pb2.ACTIVITY_TYPE_EMAIL, outcome=enums_pb2.ACTIVITY_OUTCOME_SENT
            ),
        ),
        user=owner,
    )
    assert not email.activity.first_response  # grade A needs a call
    assert email.lead.first_response.state == lead_pb2.FIRST_RESPONSE_STATE_PENDING
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call(
            "CreateActivity",
            pb.CreateActivityRequest(lead_id="F1", activity=activity_pb2.Activity()),
            user=owner,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    called = await leads.call(
        "CreateActivity",
        pb.CreateActivityRequest(lead_id="F1", activity=call_activity(activity_id="ACT1")),
        user=owner,
    )
    assert called.activity.first_response and called.lead.status == lead_pb2.LEAD_STATUS_WORKING
    assert called.lead.first_response.state == lead_pb2.FIRST_RESPONSE_STATE_MET
    assert called.lead.next_step.action == "send quote" and called.lead.activity_count == 2
    replay = await leads.call(
        "CreateActivity",
        pb.CreateActivityRequest(lead_id="F1", activity=call_activity(activity_id="ACT1")),
        user=owner,
    )
    assert replay.lead.activity_count == 2
    assert len(await events(leads.db, "leads.FirstResponseRecorded")) == 1
    conv = await leads.call(
        "ConvertLead", pb.ConvertLeadRequest(lead_id="F1", opportunity_id="OPP1"), user=owner
    )
    assert conv.lead.status == lead_pb2.LEAD_STATUS_CONVERTED and conv.opportunity_id == "OPP1"
    again = await leads.call("ConvertLead", pb.ConvertLeadRequest(lead_id="F1"), user=owner)
    assert again.opportunity_id == "OPP1"
    converted = await events(leads.db, "leads.LeadConverted")
    assert len(converted) == 1
    payload = unpack_payload(converted[0][1], events_pb2.LeadConverted)
    assert payload.opportunity_id == "OPP1" and payload.amount_estimate.amount_minor == 50_000_000
    assert payload.contact_name == "Zhang Wei"
    assert lead.recycle.recycle_time.seconds and conv.lead.recycle.exempt  # converted leads never recycle
    metrics = await leads.call(
        "GetLeadMetrics",
        pb.GetLeadMetricsRequest(group_by=insights_pb2.METRICS_DIMENSION_SOURCE_CODE),
        user="sup-a",
    )  # by source code
    assert metrics.totals.created_count == 1 and metrics.totals.converted_count == 1
    assert metrics.totals.sla_compliance_ratio == 1.0 and metrics.totals.conversion_ratio == 1.0


async def test_visit_requires_check_in_and_action_units(leads: Leads) -> None:
    await configure(leads)
    owner = (await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("V1")))).lead.owner_user_id
    policy = policies_pb2.FollowUpPolicy()
    policy.action_units.add(unit_id="appointment", required=True)
    policy.action_units.add(unit_id="questionnaire", required=True, evidence=policies_pb2.EVIDENCE_KIND_NOTE)
    await leads.call(
        "UpdateFollowUpPolicy",
        pb.UpdateFollowUpPolicyRequest(follow_up_policy=policy, update_mask=mask("action_units")),
    )
    visit = call_activity(activity_type=enums_pb2.ACTIVITY_TYPE_VISIT)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call("CreateActivity", pb.CreateActivityRequest(lead_id="V1", activity=visit), user=owner)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # no check-in
    visit.visit.check_in.location.latitude = 31.2
    visit.visit.check_in.check_in_time.GetCurrentTime()
    visit.action_units.add(unit_id="appointment", done=True)
    visit.action_units.add(unit_id="questionnaire", done=True)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call("CreateActivity", pb.CreateActivityRequest(lead_id="V1", activity=visit), user=owner)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    visit.action_units[1].note = "pain: slow month-end close"
    done = await leads.call(
        "CreateActivity", pb.CreateActivityRequest(lead_id="V1", activity=visit), user=owner
    )
    assert done.activity.activity_type == enums_pb2.ACTIVITY_TYPE_VISIT


async def test_behaviour_events_regrade(leads: Leads) -> None:
    lead = (
        await leads.call(
            "CreateLead", pb.CreateLeadRequest(lead=hot_lead("B1", budget=100_000_00, channel=1))
        )
    ).lead
    assert (lead.grade, lead.score) == (enums_pb2.LEAD_GRADE_C, 25)  # budget stated 15 + complete form 10
    for i in range(2):
        evt = lead_pb2.BehaviorEvent(
            behavior_event_id=f"E{i}", event_type="pricing_page_view", occur_time=now_ts()
        )
        out = await leads.call(
            "CreateBehaviorEvent", pb.CreateBehaviorEventRequest(lead_id="B1", behavior_event=evt)
        )
    assert out.regraded and (out.lead.grade, out.lead.score) == (enums_pb2.LEAD_GRADE_B, 50)
    assert "pricing-interest" in [r.rule_id for r in out.lead.grading.fired_rules]
    graded = await events(leads.db, "leads.LeadGraded")
    assert len(graded) == 1


async def test_update_merge_and_dismiss_duplicates(leads: Leads) -> None:
    await configure(leads)
    a = (await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("U1")))).lead
    b = (
        await leads.call(
            "CreateLead",
            pb.CreateLeadRequest(lead=hot_lead("U2", phone="13800000072", company="Zenith Motors")),
        )
    ).lead
    with pytest.raises(grpc.aio.AioRpcError) as err:  # ownership changes only through custom methods
        await leads.call(
            "UpdateLead",
            pb.UpdateLeadRequest(
                lead=lead_pb2.Lead(lead_id="U2", owner_user_id="x"), update_mask=mask("owner_user_id")
            ),
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # B's e-mail changes to A's: flagged, not merged; a smaller budget re-grades B.
    change = lead_pb2.Lead(lead_id="U2", etag=b.etag)
    change.contact.email = "ZHANG@acme.cn"
    first = await leads.call(
        "UpdateLead", pb.UpdateLeadRequest(lead=change, update_mask=mask("contact.email"))
    )
    assert first.lead.contact.email == "zhang@acme.cn" and first.lead.contact.phone == "+8613800000072"
    assert not first.lead.duplicate_review_needed  # nobody else has that e-mail yet
    change = lead_pb2.Lead(lead_id="U1")
    change.contact.email = "zhang@acme.cn"
    await leads.call("UpdateLead", pb.UpdateLeadRequest(lead=change, update_mask=mask("contact.email")))
    u1 = (await leads.call("GetLead", pb.GetLeadRequest(lead_id="U1"))).lead
    assert u1.duplicate_review_needed and u1.duplicate_candidates[0].lead_id == "U2"
    dismissed = await leads.call("DismissDuplicates", pb.DismissDuplicatesRequest(lead_id="U1"))
    assert not dismissed.lead.duplicate_review_needed
    assert dismissed.lead.duplicate_candidates[0].state == lead_pb2.DUPLICATE_CANDIDATE_STATE_DISMISSED
    budget = lead_pb2.Lead(lead_id="U2")
    budget.stated_budget.currency, budget.stated_budget.amount_minor = "CNY", 0
    regraded = await leads.call(
        "UpdateLead", pb.UpdateLeadRequest(lead=budget, update_mask=mask("stated_budget"))
    )
    assert regraded.lead.score < b.score
    await leads.call(
        "CreateActivity",
        pb.CreateActivityRequest(lead_id="U2", activity=call_activity()),
        user=b.owner_user_id,
    )
    merged = await leads.call(
        "MergeLead", pb.MergeLeadRequest(lead_id="U2", target_lead_id="U1"), user="sup-a"
    )
    assert merged.lead.lead_id == "U1" and merged.lead.intake_count == 2 and merged.lead.activity_count == 1
    gone = (await leads.call("GetLead", pb.GetLeadRequest(lead_id="U2"))).lead
    assert gone.status == lead_pb2.LEAD_STATUS_MERGED and gone.merged_into_lead_id == "U1"
    acts = await leads.call("ListActivities", pb.ListActivitiesRequest(lead_id="U1"))
    assert len(acts.activities) == 1
    assert a.lead_id == "U1"


async def test_board_dormant_and_my_activities(leads: Leads) -> None:
    await configure(leads)
    hot = (await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("H1")))).lead
    await leads.call(
        "CreateLead", pb.CreateLeadRequest(lead=hot_lead("H2", phone="13800000082", company="Zenith"))
    )
    # Unroutable: no rule matches a west lead, it waits in the fallback queue and shows on the board.
    west = (
        await leads.call(
            "CreateLead",
            pb.CreateLeadRequest(lead=hot_lead("W1", phone="13800000083", company="Xi", region="west/xian")),
        )
    ).lead
    assert west.pool_id == "fallback" and west.pool_entry_reason == enums_pb2.POOL_ENTRY_REASON_UNROUTED
    board = await leads.call("ListAttentionItems", pb.ListAttentionItemsRequest(), user="admin")
    reasons = {i.lead.lead_id: set(i.reasons) for i in board.items}
    assert 4 in reasons["W1"]  # ATTENTION_REASON_UNROUTED
    sup_b_board = await leads.call("ListAttentionItems", pb.ListAttentionItemsRequest(), user="sup-b")
    assert "H1" not in {i.lead.lead_id for i in sup_b_board.items}
    dormant = await leads.call("ListDormantLeads", pb.ListDormantLeadsRequest(min_idle_days=1), user="admin")
    assert dormant.leads == []  # created today: not dormant yet
    owner = hot.owner_user_id
    await leads.call(
        "CreateActivity",
        pb.CreateActivityRequest(lead_id="H1", activity=call_activity(activity_id="A-H1")),
        user=owner,
    )
    mine = await leads.call(
        "ListActivities",
        pb.ListActivitiesRequest(lead_id="-", filter=pb.ActivityFilter(actor_user_ids=["me"])),
        user=owner,
    )
    assert [a.activity_id for a in mine.activities] == ["A-H1"]
    others = await leads.call("ListActivities", pb.ListActivitiesRequest(lead_id="-"), user="rep-b3")
    assert others.activities == []
    one = await leads.call("GetActivity", pb.GetActivityRequest(lead_id="H1", activity_id="A-H1"), user=owner)
    assert one.activity.first_response


async def test_new_grading_rules_regrade_open_leads(leads_with_worker: Leads) -> None:
    leads = leads_with_worker  # the re-grade runs as a Temporal workflow
    for i in range(3):
        await leads.call(
            "CreateLead",
            pb.CreateLeadRequest(lead=hot_lead(f"G{i}", phone=f"1380000009{i}", channel=1, budget=0)),
        )
    rules = (await leads.call("GetGradingRules", pb.GetGradingRulesRequest())).grading_rules
    rules.rules.add(rule_id="everyone", display_name="Everyone is hot", enabled=True, points=100)
    await leads.call(
        "UpdateGradingRules",
        pb.UpdateGradingRulesRequest(grading_rules=rules, update_mask=mask("rules"), regrade_open_leads=True),
    )
    for _ in range(100):
        graded = await events(leads.db, "leads.LeadGraded")
        if len(graded) == 3:
            break
        await asyncio.sleep(0.1)
    assert len(graded) == 3
    lead = (await leads.call("GetLead", pb.GetLeadRequest(lead_id="G0"))).lead
    assert (
        lead.grade == enums_pb2.LEAD_GRADE_A
        and lead.grading.trigger == lead_pb2.GRADING_TRIGGER_RULES_CHANGED
    )
    assert lead.grading.rules_version == 1


async def test_one_rep_claiming_many_leads_at_once_stops_at_the_cap(leads: Leads) -> None:
    await configure(leads, pool_cap=3)
    for i in range(10):
        await leads.call(
            "CreateLead",
            pb.CreateLeadRequest(lead=hot_lead(f"P{i}", phone=f"1380000011{i}", budget=0, channel=1)),
        )
    results = await asyncio.gather(
        *(leads.call("ClaimLead", pb.ClaimLeadRequest(lead_id=f"P{i}"), user="rep-a1") for i in range(10)),
        return_exceptions=True,
    )
    assert sum(1 for r in results if not isinstance(r, BaseException)) == 3
    assert {r.code() for r in results if isinstance(r, grpc.aio.AioRpcError)} == {
        grpc.StatusCode.FAILED_PRECONDITION
    }


async def test_visit_started_at_check_in_is_completed_later(leads: Leads) -> None:
    await configure(leads)
    owner = (await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("UV")))).lead.owner_user_id
    policy = policies_pb2.FollowUpPolicy()
    policy.action_units.add(unit_id="appointment", required=True)
    await leads.call(
        "UpdateFollowUpPolicy",
        pb.UpdateFollowUpPolicyRequest(follow_up_policy=policy, update_mask=mask("action_units")),
    )
    visit = activity_pb2.Activity(
        activity_id="VISIT1",
        activity_type=enums_pb2.ACTIVITY_TYPE_VISIT,
        state=activity_pb2.ACTIVITY_STATE_IN_PROGRESS,
        occur_time=now_ts(),
    )
    visit.visit.check_in.location.latitude = 31.2
    visit.visit.check_in.check_in_time.GetCurrentTime()
    started = await leads.call(
        "CreateActivity", pb.CreateActivityRequest(lead_id="UV", activity=visit), user=owner
    )
    assert started.lead.activity_count == 0 and started.lead.status == lead_pb2.LEAD_STATUS_ASSIGNED
    done = activity_pb2.Activity(
        lead_id="UV",
        activity_id="VISIT1",
        state=activity_pb2.ACTIVITY_STATE_COMPLETED,
        outcome=enums_pb2.ACTIVITY_OUTCOME_MEETING_BOOKED,
        next_step=activity_pb2.NextStep(action="demo", due_date={"year": 2030, "month": 1, "day": 3}),
    )
    paths = mask("state", "outcome", "next_step", "action_units")
    with pytest.raises(grpc.aio.AioRpcError) as err:  # the mandatory unit is not done
        await leads.call(
            "UpdateActivity", pb.UpdateActivityRequest(activity=done, update_mask=paths), user=owner
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    done.action_units.add(unit_id="appointment", done=True)
    with pytest.raises(grpc.aio.AioRpcError) as err:  # only the rep who logged it; rep-b1 cannot see the lead
        await leads.call(
            "UpdateActivity", pb.UpdateActivityRequest(activity=done, update_mask=paths), user="rep-b1"
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    out = await leads.call(
        "UpdateActivity", pb.UpdateActivityRequest(activity=done, update_mask=paths), user=owner
    )
    assert out.activity.state == activity_pb2.ACTIVITY_STATE_COMPLETED and out.lead.activity_count == 1
    assert out.lead.status == lead_pb2.LEAD_STATUS_WORKING and out.lead.next_step.action == "demo"
    with pytest.raises(grpc.aio.AioRpcError) as err:  # completed: the outcome is locked
        await leads.call(
            "UpdateActivity", pb.UpdateActivityRequest(activity=done, update_mask=mask("outcome")), user=owner
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    note = activity_pb2.Activity(lead_id="UV", activity_id="VISIT1", summary="met the CFO")
    amended = await leads.call(
        "UpdateActivity", pb.UpdateActivityRequest(activity=note, update_mask=mask("summary")), user=owner
    )
    assert amended.activity.summary == "met the CFO" and amended.lead.activity_count == 1
