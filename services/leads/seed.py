"""Demo settings of the leads service, applied through its own gRPC API with the admin token (`make run`).

Article defaults: A = phone call within 1 business hour (reassigned on breach),
B = e-mail or call within 24 business hours, C = no rep SLA (claim-only pool).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import grpc
from google.protobuf import field_mask_pb2

from kit.seeding import SeedClients, SeedUser
from salesops.leads.v1 import enums_pb2, leads_service_pb2, leads_service_pb2_grpc, policies_pb2, routing_pb2
from services.leads import policies


def _mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def routing_rules() -> policies_pb2.RoutingRules:
    rules = policies_pb2.RoutingRules(fallback_pool_id="fallback")
    hot = rules.rules.add(
        rule_id="east-hot",
        display_name="East A leads -> Team A, least loaded",
        enabled=True,
        team_path="east/team-a",
        strategy=enums_pb2.ROUTING_STRATEGY_LEAST_LOADED,
        # Hot leads go to the team even after hours; the SLA clock counts business time anyway.
        allow_outside_working_hours=True,
    )
    hot.match.regions.append("east/*")
    hot.match.grades.append(enums_pb2.LEAD_GRADE_A)
    warm = rules.rules.add(
        rule_id="east-warm",
        display_name="East B leads -> Team B, weighted round robin",
        enabled=True,
        team_path="east/team-b",
        strategy=enums_pb2.ROUTING_STRATEGY_WEIGHTED_ROUND_ROBIN,
    )
    warm.match.regions.append("east/*")
    warm.match.grades.append(enums_pb2.LEAD_GRADE_B)
    cold = rules.rules.add(
        rule_id="cold-pool",
        display_name="C leads wait in the east pool for a claim",
        enabled=True,
        team_path="east",
        strategy=enums_pb2.ROUTING_STRATEGY_CLAIM_ONLY,
        pool_id="east",
    )
    cold.match.grades.append(enums_pb2.LEAD_GRADE_C)
    return rules


def pool_rules() -> policies_pb2.PoolRules:
    out = policies_pb2.PoolRules()
    for pool_id, region, cap, daily in (
        ("default", "", 50, 20),
        ("east", "east", 30, 10),
        ("fallback", "", 50, 20),
    ):
        pool = out.pools.add(
            pool_id=pool_id,
            display_name=pool_id.title(),
            region=region,
            private_lead_cap=cap,
            daily_claim_cap=daily,
            reclaim_cooldown_days=7,
        )
        for grade, n, k in (
            (enums_pb2.LEAD_GRADE_A, 7, 2),
            (enums_pb2.LEAD_GRADE_B, 15, 3),
            (enums_pb2.LEAD_GRADE_C, 30, 5),
        ):
            pool.recycle_rules.add(grade=grade, enabled=True, recycle_after_days=n, warn_before_days=k)
    return out


def sla_policies() -> policies_pb2.SlaPolicies:
    out = policies_pb2.SlaPolicies(attention_after_days=3)
    a = out.policies.add(
        grade=enums_pb2.LEAD_GRADE_A,
        enabled=True,
        qualifying_activity_types=[enums_pb2.ACTIVITY_TYPE_CALL],
        escalate_on_breach=True,
        breach_action=enums_pb2.SLA_BREACH_ACTION_REASSIGN_NEXT_REP,
        max_reassignments=1,
        restart_on_reassign=True,
    )
    a.response_window.FromTimedelta(timedelta(hours=1))
    a.reminder_before.FromTimedelta(timedelta(minutes=30))
    b = out.policies.add(
        grade=enums_pb2.LEAD_GRADE_B,
        enabled=True,
        qualifying_activity_types=[enums_pb2.ACTIVITY_TYPE_EMAIL, enums_pb2.ACTIVITY_TYPE_CALL],
        escalate_on_breach=True,
        breach_action=enums_pb2.SLA_BREACH_ACTION_NONE,
    )
    b.response_window.FromTimedelta(timedelta(hours=24))
    b.reminder_before.FromTimedelta(timedelta(minutes=30))
    return out


def rep_profiles(users: Sequence[SeedUser]) -> list[routing_pb2.RepProfile]:
    """A routing profile for each rep of the demo org chart, under their team's supervisor."""
    supervisors = {u.org: u.user_id for u in users if "supervisor" in u.roles}
    out = []
    for u in users:
        if "rep" not in u.roles:
            continue
        n = int(u.user_id[-1]) if u.user_id[-1].isdigit() else 2
        out.append(
            routing_pb2.RepProfile(
                user_id=u.user_id,
                display_name=u.display_name,
                team_path=u.org,
                supervisor_user_id=supervisors.get(u.org, ""),
                accepting_leads=True,
                capacity=30,
                weight=2 if n == 1 else 1,  # the senior rep takes twice the round-robin share
                skills=["erp"] if n % 2 else ["crm"],
                language_codes=["zh-CN", "en"] if n <= 2 else ["zh-CN"],
                regions=["east"],
            )
        )
    return out


async def demo_seed(clients: SeedClients) -> None:
    """The ServiceSpec hook `make run` calls: the demo tenant's policies and its reps' profiles."""
    await seed(clients.addresses["leads"], clients.tokens["admin"], clients.users)


async def seed(address: str, admin_token: str, users: Sequence[SeedUser]) -> None:
    md = (("authorization", f"Bearer {admin_token}"),)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = leads_service_pb2_grpc.LeadsServiceStub(channel)
        await stub.UpdateGradingRules(
            leads_service_pb2.UpdateGradingRulesRequest(
                grading_rules=policies.default(policies.GRADING),  # type: ignore[arg-type]
                update_mask=_mask("rules", "grade_a_min_score", "grade_b_min_score", "completeness_fields"),
            ),
            metadata=md,
            timeout=10,
        )
        await stub.UpdateRoutingRules(
            leads_service_pb2.UpdateRoutingRulesRequest(
                routing_rules=routing_rules(), update_mask=_mask("rules", "fallback_pool_id")
            ),
            metadata=md,
            timeout=10,
        )
        await stub.UpdatePoolRules(
            leads_service_pb2.UpdatePoolRulesRequest(pool_rules=pool_rules(), update_mask=_mask("pools")),
            metadata=md,
            timeout=10,
        )
        await stub.UpdateSlaPolicies(
            leads_service_pb2.UpdateSlaPoliciesRequest(
                sla_policies=sla_policies(), update_mask=_mask("policies", "attention_after_days")
            ),
            metadata=md,
            timeout=10,
        )
        fields = [
            f.name
            for f in routing_pb2.RepProfile.DESCRIPTOR.fields
            if 1 < f.number < 20 and f.name != "leaves"
        ]
        for profile in rep_profiles(users):
            await stub.UpdateRepProfile(
                leads_service_pb2.UpdateRepProfileRequest(
                    rep_profile=profile, update_mask=_mask(*fields), allow_missing=True
                ),
                metadata=md,
                timeout=10,
            )
