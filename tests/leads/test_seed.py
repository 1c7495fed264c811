"""The demo seed configures the leads service through its API, idempotently, and the demo flows work on it."""

from __future__ import annotations

from deploy.local.demo import DEMO_USERS
from salesops.leads.v1 import enums_pb2, lead_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads import seed
from tests.leads.conftest import Leads, token
from tests.leads.helpers import hot_lead


async def test_demo_seed_routes_a_b_and_c_leads(leads: Leads) -> None:
    await seed.seed(leads.address, token("admin"), DEMO_USERS)
    await seed.seed(leads.address, token("admin"), DEMO_USERS)  # `make run` twice: same settings
    sla = (await leads.call("GetSlaPolicies", pb.GetSlaPoliciesRequest())).sla_policies
    windows = {p.grade: p.response_window.ToTimedelta().total_seconds() / 3600 for p in sla.policies}
    assert windows == {enums_pb2.LEAD_GRADE_A: 1, enums_pb2.LEAD_GRADE_B: 24} and sla.version == 2
    profiles = (await leads.call("ListRepProfiles", pb.ListRepProfilesRequest())).rep_profiles
    assert len(profiles) == 8 and {p.supervisor_user_id for p in profiles} == {"sup-a", "sup-b"}
    hot = (await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("A1")))).lead
    assert hot.grade == enums_pb2.LEAD_GRADE_A and hot.team_path == "east/team-a" and hot.owner_user_id
    assert hot.supervisor_user_id == "sup-a"
    cold = (
        await leads.call(
            "CreateLead", pb.CreateLeadRequest(lead=hot_lead("C1", phone="13800000051", budget=0, channel=1))
        )
    ).lead
    assert cold.status == lead_pb2.LEAD_STATUS_IN_POOL and cold.pool_id == "east"
    assert cold.pool_entry_reason == enums_pb2.POOL_ENTRY_REASON_CLAIM_ONLY
