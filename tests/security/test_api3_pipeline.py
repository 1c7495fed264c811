"""API3 in pipeline: properties a caller may not set. A deal's lead comes from the lead's
conversion alone, so nobody can claim another team's lead and swallow its conversion."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from salesops.common.v1.types_pb2 import Money
from salesops.leads.v1 import events_pb2 as lead_events
from salesops.leads.v1 import lead_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline.conversion import deal_from_lead
from services.pipeline.store import transactions
from tests.pipeline.conftest import Pipeline, pipeline
from tests.pipeline.helpers import bad_fields, new_deal, refused

__all__ = ["pipeline"]


def converted(lead_id: str) -> lead_events.LeadConverted:
    return lead_events.LeadConverted(
        lead=lead_events.LeadContext(lead_id=lead_id),
        opportunity_id=f"opp-{lead_id}",
        opportunity_name="ACME rollout",
        owner_user_id="rep-a1",
        actor_user_id="rep-a1",
        team_path="east/team-a",
        amount_estimate=Money(amount_minor=500_000, currency="CNY"),
        company=lead_pb2.LeadCompany(name="ACME Ltd", industry="mfg"),
    )


async def test_a_deal_cannot_claim_a_lead_so_its_conversion_still_makes_the_owners_deal(
    pipeline: Pipeline,
) -> None:
    squat = new_deal("squat")
    squat.source.lead_id = "L-team-a"
    for user in ("rep-b1", "admin"):
        status = await refused(
            pipeline.call("CreateDeal", pb.CreateDealRequest(deal=squat), user=user),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert bad_fields(status) == ["deal.source.lead_id"]

    at = datetime.now(UTC)
    row = await transactions(pipeline.db).run(
        "demo", lambda uow: deal_from_lead(uow, converted("L-team-a"), at)
    )
    assert (row.deal_id, row.owner_user_id, row.org_path) == ("opp-L-team-a", "rep-a1", "east/team-a")
    found = await pipeline.call(
        "ListDeals", pb.ListDealsRequest(filter=pb.DealFilter(lead_id="L-team-a")), user="admin"
    )
    assert [d.deal_id for d in found.deals] == ["opp-L-team-a"]


async def test_a_lead_id_answers_nothing_about_other_teams_conversions(pipeline: Pipeline) -> None:
    """Claiming a converted lead's id is refused like any other: no ABORTED/ALREADY_EXISTS oracle."""
    at = datetime.now(UTC)
    await transactions(pipeline.db).run("demo", lambda uow: deal_from_lead(uow, converted("L-x"), at))
    probe = new_deal("probe")
    probe.source.lead_id = "L-x"
    status = await refused(
        pipeline.call("CreateDeal", pb.CreateDealRequest(deal=probe), user="rep-b1"),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert bad_fields(status) == ["deal.source.lead_id"]
