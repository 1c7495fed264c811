"""Builders for leads API tests: demo-like configuration and leads."""

from __future__ import annotations

from typing import Any

from google.protobuf import field_mask_pb2
from sqlalchemy import select

from kit.db import Database
from kit.events import parse_envelope, payload_type
from salesops.common.v1.types_pb2 import Money
from salesops.leads.v1 import enums_pb2, lead_pb2, policies_pb2, routing_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads.store import outbox

A_TEAM, B_TEAM = "east/team-a", "east/team-b"


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


async def configure(leads: Any, *, pool_cap: int = 0, daily_cap: int = 0, cooldown_days: int = 0) -> None:
    """Routing: A-grade east leads -> team A (least loaded); other east leads -> team B (WRR)."""
    rules = policies_pb2.RoutingRules(fallback_pool_id="fallback")
    r1 = rules.rules.add(
        rule_id="east-a",
        display_name="East hot leads",
        enabled=True,
        team_path=A_TEAM,
        strategy=enums_pb2.ROUTING_STRATEGY_LEAST_LOADED,
        allow_outside_working_hours=True,
    )
    r1.match.regions.append("east/*")
    r1.match.grades.append(enums_pb2.LEAD_GRADE_A)
    r2 = rules.rules.add(
        rule_id="east-rest",
        display_name="East other leads",
        enabled=True,
        team_path=B_TEAM,
        strategy=enums_pb2.ROUTING_STRATEGY_WEIGHTED_ROUND_ROBIN,
        allow_outside_working_hours=True,
    )
    r2.match.regions.append("east/*")
    r2.match.grades.append(enums_pb2.LEAD_GRADE_B)
    r3 = rules.rules.add(
        rule_id="claim",
        display_name="Cold leads wait for a claim",
        enabled=True,
        team_path=A_TEAM,
        strategy=enums_pb2.ROUTING_STRATEGY_CLAIM_ONLY,
    )
    r3.match.grades.append(enums_pb2.LEAD_GRADE_C)
    await leads.call(
        "UpdateRoutingRules",
        pb.UpdateRoutingRulesRequest(routing_rules=rules, update_mask=mask("rules", "fallback_pool_id")),
    )
    pools = policies_pb2.PoolRules()
    for pid in ("default", "fallback"):
        p = pools.pools.add(
            pool_id=pid,
            private_lead_cap=pool_cap,
            daily_claim_cap=daily_cap,
            reclaim_cooldown_days=cooldown_days,
        )
        p.recycle_rules.add(
            grade=enums_pb2.LEAD_GRADE_A, enabled=True, recycle_after_days=7, warn_before_days=2
        )
    await leads.call(
        "UpdatePoolRules", pb.UpdatePoolRulesRequest(pool_rules=pools, update_mask=mask("pools"))
    )
    for team, sup in ((A_TEAM, "sup-a"), (B_TEAM, "sup-b")):
        letter = team[-1]
        for n in range(1, 5):
            prof = routing_pb2.RepProfile(
                user_id=f"rep-{letter}{n}",
                display_name=f"Rep {letter}{n}",
                team_path=team,
                supervisor_user_id=sup,
                accepting_leads=True,
                capacity=20,
                weight=1,
            )
            await leads.call(
                "UpdateRepProfile",
                pb.UpdateRepProfileRequest(
                    rep_profile=prof,
                    update_mask=mask(
                        "display_name",
                        "team_path",
                        "supervisor_user_id",
                        "accepting_leads",
                        "capacity",
                        "weight",
                    ),
                    allow_missing=True,
                ),
            )


def hot_lead(lead_id: str = "", phone: str = "13800000001", **kw: Any) -> lead_pb2.Lead:
    """Scores 40 (big budget) + 15 (budget) + 15 (call centre) + 10 (complete form) = 80: grade A."""
    lead = lead_pb2.Lead(
        lead_id=lead_id,
        contact=lead_pb2.LeadContact(name="Zhang Wei", phone=phone, email=kw.pop("email", "")),
        company=lead_pb2.LeadCompany(name=kw.pop("company", "ACME Trading Co., Ltd.")),
        source=lead_pb2.LeadSource(channel=kw.pop("channel", enums_pb2.LEAD_CHANNEL_CALL_CENTER)),
        region=kw.pop("region", "east/shanghai"),
        stated_budget=Money(amount_minor=kw.pop("budget", 50_000_000), currency="CNY"),
    )
    for k, v in kw.items():
        setattr(lead, k, v)
    return lead


async def events(db: Database, event_type: str | None = None) -> list[tuple[str, Any]]:
    """(type, envelope) from the outbox, oldest first."""
    async with db.system_session() as s:
        rows = (await s.execute(select(outbox.c.type, outbox.c.envelope).order_by(outbox.c.id))).all()
    out = [(t, parse_envelope(e)) for t, e in rows]
    assert all(payload_type(e) for _, e in out)
    return [x for x in out if event_type is None or x[0] == event_type]
