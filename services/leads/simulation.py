"""Routing simulation: the routing rules run for a hypothetical lead, as a trace that is not recorded.

The same path as `ownership.route` up to the decision (rule match, the team's reps with their loads,
the strategy), without applying it: no owner, no pool entry, no stored decision, no round-robin turn.
"""

from __future__ import annotations

from datetime import datetime

from kit.resources import UnitOfWork
from salesops.leads.v1 import enums_pb2, policies_pb2, routing_pb2
from services.leads import decisions, policies, policy_rules
from services.leads.convert import enum_name
from services.leads.domain import pool as pool_rules
from services.leads.domain import routing
from services.leads.repositories.reps import RepRepository
from services.leads.reps import rep_for_routing
from services.leads.store import LeadRow


async def simulate(
    uow: UnitOfWork,
    facts: routing.LeadFacts,
    draft: policies_pb2.RoutingRules | None,
    at: datetime,
) -> routing_pb2.AssignmentDecision:
    tenant = await policies.TenantPolicies.load(uow)
    rules_msg = tenant.routing_msg
    if draft is not None:
        policies.validate(policies.ROUTING, draft)
        rules_msg = draft
    rules = policy_rules.routing_rules(rules_msg)
    rule, _ = routing.match_rule(rules, facts)
    region_pool = pool_rules.pool_for_region(tenant.pools, facts.region)
    reps: list[routing.Rep] = []
    wrr: dict[str, int] = {}
    if rule is not None and rule.strategy != routing.CLAIM_ONLY:
        repo = RepRepository(uow)
        rows = await repo.in_team(rule.team_path, rule.include_sub_teams)
        counts = await repo.open_counts([r.user_id for r in rows])
        reps = [rep_for_routing(r, counts.get(r.user_id, 0), region_pool.private_lead_cap) for r in rows]
        wrr = {r.user_id: r.wrr_current for r in rows}
    decision = routing.route(
        facts,
        rules,
        reps,
        at,
        fallback_pool=rules_msg.fallback_pool_id or "fallback",
        region_pool=region_pool.pool_id,
        tenant_calendar=policies.CALENDAR,
        wrr_state=wrr,
    )
    msg = decisions.decision_proto(
        decision,
        LeadRow(lead_id=""),  # transient: never added to the session
        reason="ROUTED",
        actor="",
        at=at,
        previous_owner="",
        rules_version=rules_msg.version,
    )
    msg.decision_id = ""
    return msg


def facts_of(
    *,
    region: str,
    product_lines: list[str],
    channel: int,
    source_code: str,
    grade: int,
    language: str,
) -> routing.LeadFacts:
    return routing.LeadFacts(
        lead_id="",
        region=region,
        product_lines=tuple(product_lines),
        channel=enum_name(enums_pb2.LeadChannel, channel),
        source_code=source_code,
        grade=enum_name(enums_pb2.LeadGrade, grade),
        language=language,
    )
