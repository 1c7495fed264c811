"""Tenant policies as the pure rules of domain/: the proto documents converted once per unit of work."""

from __future__ import annotations

from datetime import timedelta

from salesops.leads.v1 import enums_pb2, policies_pb2
from services.leads.convert import enum_name
from services.leads.domain import grading, pool, routing, sla


def grading_rules(msg: policies_pb2.GradingRules) -> grading.Rules:
    rules: list[grading.Rule] = []
    for r in msg.rules:
        conds: list[grading.Condition] = []
        for c in r.conditions:
            which = c.WhichOneof("condition")
            if which == "source":
                conds.append(
                    grading.SourceCond(
                        tuple(enum_name(enums_pb2.LeadChannel, x) for x in c.source.channels),
                        tuple(c.source.source_codes),
                    )
                )
            elif which == "field":
                op = policies_pb2.FieldOperator.Name(c.field.operator).removeprefix("FIELD_OPERATOR_")
                conds.append(grading.FieldCond(c.field.field_path, op, tuple(c.field.values)))
            elif which == "behavior":
                within = c.behavior.within.ToTimedelta() if c.behavior.HasField("within") else None
                conds.append(grading.BehaviorCond(c.behavior.event_type, c.behavior.min_count or 1, within))
            elif which == "completeness":
                conds.append(grading.CompletenessCond(c.completeness.min_percent))
            elif which == "budget":
                b = c.budget
                currency = b.min_budget.currency or b.max_budget.currency or "CNY"
                conds.append(
                    grading.BudgetCond(
                        currency,
                        b.min_budget.amount_minor / 100 if b.HasField("min_budget") else None,
                        b.max_budget.amount_minor / 100 if b.HasField("max_budget") else None,
                    )
                )
        rules.append(grading.Rule(r.rule_id, r.display_name, r.points, tuple(conds), r.enabled))
    return grading.Rules(
        tuple(rules),
        msg.grade_a_min_score,
        msg.grade_b_min_score,
        tuple(msg.completeness_fields),
        msg.version,
    )


def routing_rules(msg: policies_pb2.RoutingRules) -> list[routing.Rule]:
    return [
        routing.Rule(
            rule_id=r.rule_id,
            team_path=r.team_path,
            strategy=enum_name(enums_pb2.RoutingStrategy, r.strategy),
            display_name=r.display_name,
            enabled=r.enabled,
            regions=tuple(r.match.regions),
            product_lines=tuple(r.match.product_lines),
            channels=tuple(enum_name(enums_pb2.LeadChannel, c) for c in r.match.channels),
            source_codes=tuple(r.match.source_codes),
            grades=tuple(enum_name(enums_pb2.LeadGrade, g) for g in r.match.grades),
            language_codes=tuple(r.match.language_codes),
            include_sub_teams=r.include_sub_teams,
            required_skills=tuple(r.required_skills),
            match_language=r.match_language,
            allow_outside_working_hours=r.allow_outside_working_hours,
            pool_id=r.pool_id,
        )
        for r in msg.rules
    ]


def pools(msg: policies_pb2.PoolRules) -> tuple[pool.Pool, ...]:
    return tuple(
        pool.Pool(
            p.pool_id,
            p.display_name,
            p.region,
            p.private_lead_cap,
            p.daily_claim_cap,
            p.reclaim_cooldown_days,
            tuple(
                pool.RecycleRule(
                    enum_name(enums_pb2.LeadGrade, r.grade),
                    r.enabled,
                    r.recycle_after_days,
                    r.warn_before_days,
                )
                for r in p.recycle_rules
            ),
        )
        for p in msg.pools
    )


def sla_policies(msg: policies_pb2.SlaPolicies) -> sla.Policies:
    return sla.Policies(
        tuple(
            sla.Policy(
                grade=enum_name(enums_pb2.LeadGrade, p.grade),
                enabled=p.enabled,
                window=p.response_window.ToTimedelta(),
                reminder_before=p.reminder_before.ToTimedelta()
                if p.HasField("reminder_before")
                else timedelta(minutes=30),
                qualifying_types=tuple(
                    enum_name(enums_pb2.ActivityType, t) for t in p.qualifying_activity_types
                ),
                qualifying_outcomes=tuple(
                    enum_name(enums_pb2.ActivityOutcome, o) for o in p.qualifying_outcomes
                ),
                escalate=p.escalate_on_breach,
                breach_action=enum_name(enums_pb2.SlaBreachAction, p.breach_action) or sla.NONE,
                max_reassignments=p.max_reassignments,
                restart_on_reassign=p.restart_on_reassign,
            )
            for p in msg.policies
        ),
        msg.attention_after_days,
        msg.version,
    )
