"""The demo history's neglected leads: received in the past through intake (graded and routed by the
demo tenant's rules), untouched since, they are what ListDormantLeads answers; a second run adds none."""

from __future__ import annotations

from datetime import UTC, datetime

from deploy.local.demo import DEMO_USERS
from salesops.leads.v1 import enums_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads import seed, seed_history
from tests.leads.conftest import Leads, token


async def test_neglected_leads_are_dormant_for_the_director(leads: Leads) -> None:
    await seed.seed(leads.address, token("admin"), DEMO_USERS)
    now = datetime.now(UTC)
    await seed_history.seed_history(leads.db, "demo", DEMO_USERS, now)
    await seed_history.seed_history(leads.db, "demo", DEMO_USERS, now)  # `make run` again: replayed
    req = pb.ListDormantLeadsRequest(min_idle_days=7, page_size=50)
    got = (await leads.call("ListDormantLeads", req, user="director-east")).leads
    assert len(got) == len(seed_history.NEGLECTED)
    grades = {d.lead.grade for d in got}
    assert grades == {enums_pb2.LEAD_GRADE_A, enums_pb2.LEAD_GRADE_B}
    days = sorted(d.idle_days for d in got)
    assert days == sorted(n for _, n, _ in seed_history.NEGLECTED)
    # Routed by the rules in force then: to a rep of the grade's team, or (a B lead out of hours) a pool.
    assert all(d.lead.owner_user_id.startswith("rep-") or d.lead.pool_id for d in got)
    # A week's idleness is the panel's bar: with two weeks asked, the younger ones drop out.
    two_weeks = pb.ListDormantLeadsRequest(min_idle_days=14, page_size=50)
    older = (await leads.call("ListDormantLeads", two_weeks, user="director-east")).leads
    assert len(older) == sum(1 for _, n, _ in seed_history.NEGLECTED if n >= 14)
