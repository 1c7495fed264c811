"""API6 in leads (sensitive business flows): a pool lead is taken only by a claim, under the caps.

MergeLead let any rep who could see a pool lead absorb it into a lead of their own: no claim,
no cap, the lead gone from the pool for everyone, and the phone its merged intakes carried
shown unmasked on the rep's lead (owners see their own lead's intakes in full)."""

from __future__ import annotations

import grpc
import pytest

from salesops.leads.v1 import lead_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from tests.leads.conftest import Leads
from tests.leads.helpers import configure, hot_lead

POOL_PHONE = "13800000631"


async def pool_lead_with_a_merged_intake(leads: Leads) -> None:
    cold = hot_lead("POOL-6", phone=POOL_PHONE, budget=100_000_00, channel=1)  # grade C: claim only
    assert (await leads.call("CreateLead", pb.CreateLeadRequest(lead=cold))).lead.status == (
        lead_pb2.LEAD_STATUS_IN_POOL
    )
    again = hot_lead("", phone=POOL_PHONE, budget=100_000_00, channel=1)  # the same caller again: merged
    assert (
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=again))
    ).outcome == pb.INTAKE_OUTCOME_MERGED


async def test_a_rep_cannot_merge_a_pool_lead_into_their_own(leads: Leads) -> None:
    await configure(leads, pool_cap=1)
    await pool_lead_with_a_merged_intake(leads)
    mine = (
        await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead("MINE-6", phone="13800000632")))
    ).lead
    rep = mine.owner_user_id
    assert rep.startswith("rep-a")
    seen = (await leads.call("GetLead", pb.GetLeadRequest(lead_id="POOL-6"), user=rep)).lead
    assert seen.contact.phone_masked

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call(
            "MergeLead", pb.MergeLeadRequest(lead_id="POOL-6", target_lead_id="MINE-6"), user=rep
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as err:  # nor the other way round
        await leads.call(
            "MergeLead", pb.MergeLeadRequest(lead_id="MINE-6", target_lead_id="POOL-6"), user=rep
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    still = (await leads.call("GetLead", pb.GetLeadRequest(lead_id="POOL-6"), user=rep)).lead
    assert still.status == lead_pb2.LEAD_STATUS_IN_POOL
    own = (await leads.call("GetLead", pb.GetLeadRequest(lead_id="MINE-6"), user=rep)).lead
    assert all(POOL_PHONE not in r.contact.phone for r in own.recent_intakes)


async def test_the_pools_manager_still_merges_pool_duplicates(leads: Leads) -> None:
    await configure(leads)
    await pool_lead_with_a_merged_intake(leads)
    other = hot_lead("POOL-7", phone="13800000633", budget=100_000_00, channel=1)
    await leads.call("CreateLead", pb.CreateLeadRequest(lead=other))
    merged = await leads.call(
        "MergeLead", pb.MergeLeadRequest(lead_id="POOL-7", target_lead_id="POOL-6"), user="sup-a"
    )
    assert merged.lead.lead_id == "POOL-6"
