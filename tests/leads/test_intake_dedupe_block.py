"""Intake's reads: the fuzzy company match of a single intake reads the names nearest the new one
in its block, so a similar company is found however many leads share the block (it read at most
1,000 of them, the block's oldest on SQLite, before); a client-made id checked before the write."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import insert

from salesops.leads.v1 import enums_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads.store import LeadRow
from tests.leads.conftest import Leads
from tests.leads.helpers import events, hot_lead

CROWD = 1500  # more than the block read of 1,000 rows


async def test_a_similar_company_beyond_the_blocks_first_thousand_is_flagged(leads: Leads) -> None:
    at = datetime.now(UTC)
    crowd = [
        {
            "tenant_id": "demo",
            "lead_id": f"Z{i:05d}",
            "status": "IN_POOL",
            "display_name": f"Zeta Crowd {i}",
            "company_norm": f"zetacrowd{i:05d}",
            "company_key": "ze",
            "pool_id": "default",
            "created_at": at,
            "updated_at": at,
        }
        for i in range(CROWD)
    ]
    async with leads.db.engine.begin() as conn:
        await conn.execute(insert(LeadRow.__table__), crowd)  # type: ignore[arg-type]
    # The last lead of the block: its company sorts after the crowd's.
    target = await leads.call(
        "CreateLead",
        pb.CreateLeadRequest(lead=hot_lead("ZT", phone="13800009001", company="Zetta Wholesale")),
    )
    assert target.outcome == pb.INTAKE_OUTCOME_CREATED
    similar = await leads.call(
        "CreateLead", pb.CreateLeadRequest(lead=hot_lead("ZS", phone="13800009002", company="Zeta Wholesale"))
    )
    assert similar.outcome == pb.INTAKE_OUTCOME_CREATED_FLAGGED
    [cand] = similar.lead.duplicate_candidates
    assert cand.lead_id == "ZT" and cand.match_kind == enums_pb2.DUPLICATE_MATCH_KIND_COMPANY_NAME
    # A name far from every other in the block is not flagged: the neighbourhood is not the block.
    other = await leads.call(
        "CreateLead",
        pb.CreateLeadRequest(lead=hot_lead("ZO", phone="13800009003", company="Zebra Logistics")),
    )
    assert other.outcome == pb.INTAKE_OUTCOME_CREATED


async def test_concurrent_intakes_with_one_client_id_create_one_lead(leads: Leads) -> None:
    """Each reads its replay check before its write (SQLite); the losers of the race on the id
    run again, see the winner's intake and answer it as a replay."""
    req = pb.CreateLeadRequest(lead=hot_lead("SAME-ID", phone="13800009100", company="Quartz Dynamics"))
    answers = await asyncio.gather(*(leads.call("CreateLead", req) for _ in range(8)))
    assert sorted(a.replayed for a in answers) == [False] + [True] * 7
    assert {a.lead.lead_id for a in answers} == {"SAME-ID"}
    assert len(await events(leads.db, "leads.LeadCreated")) == 1
