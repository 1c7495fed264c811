"""OWASP API3 (object property level) in leads: output-only fields sent on create are ignored
(the contract's field_behavior decides), and a supervisor cannot pull another team's rep."""

from __future__ import annotations

import grpc
import pytest

from salesops.leads.v1 import activity_pb2, enums_pb2, lead_pb2, routing_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from tests.leads.conftest import Leads
from tests.leads.helpers import configure, hot_lead, mask


def forged(lead_id: str, phone: str) -> lead_pb2.Lead:
    lead = hot_lead(lead_id, phone=phone)
    lead.disqualify_reason = lead_pb2.DISQUALIFY_REASON_OTHER
    lead.disqualify_note = "forged"
    lead.source.partner_id = "partner-forged"
    lead.source.import_id = "import-forged"
    lead.source.captured_by_user_id = "someone-else"
    lead.next_step.CopyFrom(activity_pb2.NextStep(action="forged step"))
    lead.grading.score = 99
    lead.grading.fired_rules.add(rule_id="forged-rule", points=99)
    lead.duplicate_candidates.add(lead_id="FORGED-DUP", display_name="forged", score=1.0)
    lead.recent_intakes.add(intake_id="forged-intake", description="forged")
    lead.converted_opportunity_id = "OPP-FORGED"
    lead.merged_into_lead_id = "FORGED"
    lead.company.normalized_name = "forged"
    lead.contact.phone_masked = True
    return lead


def assert_not_forged(lead: lead_pb2.Lead) -> None:
    assert lead.disqualify_reason == lead_pb2.DISQUALIFY_REASON_UNSPECIFIED and lead.disqualify_note == ""
    assert lead.source.partner_id == "" and lead.source.import_id in ("", "IMP-1")
    assert lead.source.captured_by_user_id in ("", "admin")
    assert lead.next_step.action == ""
    assert "forged-rule" not in [r.rule_id for r in lead.grading.fired_rules]
    assert lead.grading.score == lead.score
    assert "FORGED-DUP" not in [c.lead_id for c in lead.duplicate_candidates]
    assert "forged-intake" not in [r.intake_id for r in lead.recent_intakes]
    assert lead.converted_opportunity_id == "" and lead.merged_into_lead_id == ""
    assert lead.company.normalized_name != "forged"


async def test_create_lead_ignores_output_only_fields(leads: Leads) -> None:
    await configure(leads)
    res = await leads.call("CreateLead", pb.CreateLeadRequest(lead=forged("MASS-1", "13800000401")))
    assert_not_forged(res.lead)
    stored = await leads.call("GetLead", pb.GetLeadRequest(lead_id="MASS-1"))
    assert_not_forged(stored.lead)
    assert not stored.lead.contact.phone_masked  # admin sees the phone: the forged flag was dropped


async def test_import_ignores_output_only_fields(leads: Leads) -> None:
    await configure(leads)
    rows = [pb.ImportLeadRow(row_ref="r1", lead=forged("MASS-2", "13800000402"))]
    out = await leads.call("ImportLeads", pb.ImportLeadsRequest(import_id="IMP-1", rows=rows))
    assert out.results[0].outcome == pb.INTAKE_OUTCOME_CREATED
    stored = (await leads.call("GetLead", pb.GetLeadRequest(lead_id="MASS-2"))).lead
    assert_not_forged(stored)
    assert stored.source.import_id == "IMP-1"  # the server's own value, not the row's


async def test_supervisor_cannot_move_another_teams_rep_into_their_team(leads: Leads) -> None:
    await configure(leads)
    grab = routing_pb2.RepProfile(user_id="rep-b1", team_path="east/team-a", supervisor_user_id="sup-a")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call(
            "UpdateRepProfile",
            pb.UpdateRepProfileRequest(rep_profile=grab, update_mask=mask("team_path", "supervisor_user_id")),
            user="sup-a",
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    still = await leads.call("GetRepProfile", pb.GetRepProfileRequest(user_id="rep-b1"), user="admin")
    assert still.rep_profile.team_path == "east/team-b"
    # Neither may a supervisor change another team's rep in place.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call(
            "UpdateRepProfile",
            pb.UpdateRepProfileRequest(
                rep_profile=routing_pb2.RepProfile(user_id="rep-b1", capacity=1), update_mask=mask("capacity")
            ),
            user="sup-a",
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # The director over both teams may move the rep.
    moved = await leads.call(
        "UpdateRepProfile",
        pb.UpdateRepProfileRequest(rep_profile=grab, update_mask=mask("team_path", "supervisor_user_id")),
        user="director-east",
    )
    assert moved.rep_profile.team_path == "east/team-a"


__all__ = ["enums_pb2"]
