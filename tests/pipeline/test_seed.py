"""The demo seed writes profiles and gated deals through the API, and a second run changes nothing."""

from __future__ import annotations

from deploy.local.demo import DEMO_USERS
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import types_pb2
from services.pipeline import seed
from tests.pipeline.conftest import Pipeline, token


async def test_demo_seed_is_idempotent_and_places_deals_in_their_teams(pipeline: Pipeline) -> None:
    tokens = {u.user_id: token(u.user_id) for u in DEMO_USERS}
    await seed.seed(pipeline.address, tokens, DEMO_USERS)
    first = await pipeline.call("ListDeals", pb.ListDealsRequest(page_size=500))
    await seed.seed(pipeline.address, tokens, DEMO_USERS)  # `make run` twice
    again = await pipeline.call("ListDeals", pb.ListDealsRequest(page_size=500))
    assert [(d.deal_id, d.etag) for d in again.deals] == [(d.deal_id, d.etag) for d in first.deals]
    assert again.total_size == 8 * len(seed.PLAN)
    stages = {d.deal_id.rsplit("-", 1)[1]: d.stage_id for d in again.deals if d.owner_user_id == "rep-a1"}
    assert stages == {
        "0": "initial_contact",
        "1": "needs_confirmed",
        "2": "solution_confirmed",
        "3": "proposal_quote",
    }
    assert {d.org_path for d in again.deals if d.owner_user_id.startswith("rep-b")} == {"east/team-b"}
    profiles = (
        await pipeline.call("ListMemberProfiles", pb.ListMemberProfilesRequest(), user="admin")
    ).member_profiles
    managers = {p.user_id: p.manager_user_id for p in profiles}
    assert (managers["rep-a1"], managers["sup-b"], managers["director-east"]) == (
        "sup-a",
        "director-east",
        "",
    )
    assert {p.etag for p in profiles} == {"2"}  # the second run wrote the same profiles again
    # The seeded pipeline shows in the forecast of the quarter holding its close dates.
    period = types_pb2.SalesPeriod(
        granularity=types_pb2.PERIOD_GRANULARITY_YEAR, start_date=again.deals[0].expected_close_date
    )
    fc = (await pipeline.call("GetForecast", pb.GetForecastRequest(period=period), user="sup-a")).forecast
    assert fc.totals.open_deal_count >= 1 and fc.totals.weighted_amount.amount_minor > 0
