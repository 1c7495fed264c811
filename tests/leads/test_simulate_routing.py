"""SimulateRouting: the routing trace of a hypothetical lead, with the saved rules or a draft; nothing recorded."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from kit.grpc.errors import status_from_error
from salesops.leads.v1 import enums_pb2, policies_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from tests.leads.conftest import Leads
from tests.leads.helpers import configure, events


async def test_simulate_shows_the_trace_and_records_nothing(leads: Leads) -> None:
    await configure(leads)
    hot = pb.SimulateRoutingRequest(region="east/shanghai", grade=enums_pb2.LEAD_GRADE_A)
    d = (await leads.call("SimulateRouting", hot)).decision
    assert [(r.rule_id, r.matched) for r in d.rules_tried] == [("east-a", True)]
    assert d.winner_user_id.startswith("rep-a") and d.candidates[0].rank == 1
    assert not d.decision_id and not d.lead_id and d.summary
    # Cold: claim-only, no winner; no rule matches a west B lead: the fallback pool.
    cold = (
        await leads.call("SimulateRouting", pb.SimulateRoutingRequest(grade=enums_pb2.LEAD_GRADE_C))
    ).decision
    assert cold.strategy == enums_pb2.ROUTING_STRATEGY_CLAIM_ONLY and not cold.winner_user_id
    west = pb.SimulateRoutingRequest(region="west/chengdu", grade=enums_pb2.LEAD_GRADE_B)
    nobody = (await leads.call("SimulateRouting", west)).decision
    assert nobody.fallback_used and nobody.pool_id == "fallback"
    assert [r.matched for r in nobody.rules_tried] == [False, False, False]
    # A draft that sends west leads to team B: tried, not saved.
    draft = policies_pb2.RoutingRules(fallback_pool_id="fallback")
    rule = draft.rules.add(
        rule_id="west",
        enabled=True,
        team_path="east/team-b",
        strategy=enums_pb2.ROUTING_STRATEGY_LEAST_LOADED,
        allow_outside_working_hours=True,
    )
    rule.match.regions.append("west/*")
    west.routing_rules.CopyFrom(draft)
    tried = (await leads.call("SimulateRouting", west)).decision
    assert tried.winner_user_id.startswith("rep-b") and tried.rules_tried[0].rule_id == "west"
    saved = await leads.call("GetRoutingRules", pb.GetRoutingRulesRequest())
    assert "west" not in {r.rule_id for r in saved.routing_rules.rules}
    assert not await events(leads.db, "leads.LeadAssigned")


async def test_simulate_validates_the_draft_and_is_for_admins(leads: Leads) -> None:
    await configure(leads)
    bad = pb.SimulateRoutingRequest(region="east/x")
    bad.routing_rules.rules.add(rule_id="r1")  # no team, no strategy
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call("SimulateRouting", bad)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = status_from_error(err.value).details
    violations = error_details_pb2.BadRequest()
    assert any(d.Unpack(violations) for d in details)
    assert {v.field for v in violations.field_violations} == {
        "routing_rules.rules[0].team_path",
        "routing_rules.rules[0].strategy",
    }
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await leads.call("SimulateRouting", pb.SimulateRoutingRequest(), user="rep-a1")
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
