"""A claim reads what it needs once: each policy document and the rep's profile one time per request."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event

from salesops.leads.v1 import leads_service_pb2 as pb
from tests.leads.conftest import Leads
from tests.leads.helpers import configure, hot_lead


async def test_claim_reads_policies_and_the_rep_once(leads: Leads) -> None:
    await configure(leads)
    cold = hot_lead("CR1", phone="13800000901", budget=100_000_00, channel=1)  # grade C: claim only
    await leads.call("CreateLead", pb.CreateLeadRequest(lead=cold))
    selects: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    engine = leads.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        claimed = await leads.call("ClaimLead", pb.ClaimLeadRequest(lead_id="CR1"), user="rep-a1")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert claimed.lead.owner_user_id == "rep-a1"
    settings = [s for s in selects if re.search(r"\bFROM tenant_settings\b", s)]
    assert len(settings) <= 3, f"{len(settings)} policy reads for one claim"  # pool, SLA, routing: once each
    reps = [s for s in selects if re.search(r"\bFROM rep_profiles\b", s)]
    assert len(reps) == 1, f"{len(reps)} reads of the rep's profile for one claim"
