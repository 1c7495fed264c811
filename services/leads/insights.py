"""Manager views: metrics (MTTR, SLA compliance, conversion, funnel), the supervisor board, dormant leads.

Figures are aggregated by the database; the board and dormant lists read one keyset page at a time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from kit.auth import Principal
from kit.resources import PageRequest, UnitOfWork, query_key
from salesops.leads.v1 import enums_pb2, insights_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads import validation
from services.leads.convert import aware, enum_name, from_ts, ts
from services.leads.domain import sla, status
from services.leads.presenters import LEADS
from services.leads.repositories.insights import Figures, InsightRepository
from services.leads.repositories.leads import LeadSearch
from services.leads.store import LeadRow


def _metrics(f: Figures) -> insights_pb2.LeadMetrics:
    m = insights_pb2.LeadMetrics(
        group_key=f.key,
        group_label=f.key or "(none)",
        created_count=f.created,
        assigned_count=f.assigned,
        responded_count=f.responded,
        converted_count=f.converted,
        disqualified_count=f.disqualified,
        recycled_count=f.recycled,
        sla_applicable_count=f.sla_applicable,
        sla_met_count=f.sla_met,
    )
    if f.mean_response_seconds is not None:
        m.mean_time_to_respond.FromTimedelta(timedelta(seconds=f.mean_response_seconds))
    if f.p90_response_seconds is not None:
        m.p90_time_to_respond.FromTimedelta(timedelta(seconds=f.p90_response_seconds))
    m.sla_compliance_ratio = f.sla_met / f.sla_applicable if f.sla_applicable else 0.0
    m.conversion_ratio = f.converted / f.created if f.created else 0.0
    return m


def _grades(values: object) -> list[str]:
    return [enum_name(enums_pb2.LeadGrade, g) for g in values]  # type: ignore[attr-defined]


async def metrics(
    uow: UnitOfWork, who: Principal, request: pb.GetLeadMetricsRequest, at: datetime
) -> pb.GetLeadMetricsResponse:
    scope = LeadSearch(
        team_path=request.team_path,
        created_from=from_ts(request.period.start_time, "period.start_time"),
        created_before=from_ts(request.period.end_time, "period.end_time"),
        regions=list(request.regions),
        channels=[enum_name(enums_pb2.LeadChannel, c) for c in request.channels],
        grades=_grades(request.grades),
    )
    repo = InsightRepository(uow)
    totals = await repo.figures(who, scope)
    out = pb.GetLeadMetricsResponse(totals=_metrics(totals[0] if totals else Figures()))
    out.compute_time.CopyFrom(ts(at))
    dimension = enum_name(insights_pb2.MetricsDimension, request.group_by)
    if dimension:
        figures = [_metrics(f) for f in await repo.figures(who, scope, dimension)]
        if dimension == "CREATE_DAY":  # a time series: oldest day first
            figures.sort(key=lambda m: m.group_key)
        else:
            figures.sort(key=lambda m: (-m.created_count, m.group_key))
        out.groups.extend(figures)
    return out


def _reasons(row: LeadRow) -> list[str]:
    """Why a lead is on the board (AttentionReason names); the SQL twin is repositories.insights.REASONS."""
    reasons: list[str] = []
    if row.needs_attention and row.owner_user_id:
        reasons.append("NO_FOLLOW_UP")
    if row.sla_state == sla.BREACHED:
        reasons.append("SLA_BREACHED")
    if row.pool_entry_reason == "UNROUTED" and row.status == status.IN_POOL:
        reasons.append("UNROUTED")
    if row.duplicate_review_needed:
        reasons.append("DUPLICATE_REVIEW")
    return reasons


async def attention(
    uow: UnitOfWork, who: Principal, request: pb.ListAttentionItemsRequest, at: datetime
) -> pb.ListAttentionItemsResponse:
    scope = LeadSearch(
        team_path=request.team_path,
        owners=[who.user_id if o == "me" else o for o in request.owner_user_ids],
        grades=_grades(request.grades),
    )
    wanted = [enum_name(insights_pb2.AttentionReason, r) for r in request.reasons] or [
        "NO_FOLLOW_UP",
        "SLA_BREACHED",
        "UNROUTED",
        "DUPLICATE_REVIEW",
    ]
    page = PageRequest.parse(request.page_size, request.page_token)
    query = query_key("ListAttentionItems", who.user_id, scope.team_path, scope.owners, scope.grades, wanted)
    found = await InsightRepository(uow).attention(who, scope, wanted, page, query)
    out = pb.ListAttentionItemsResponse(
        next_page_token=found.next_page_token, total_size=found.total_size or 0
    )
    for r in found.items:
        since = aware(r.last_activity_time) or aware(r.assign_time) or aware(r.created_at) or at
        item = out.items.add(
            lead=LEADS.present(who, r),
            reasons=[
                insights_pb2.AttentionReason.Value("ATTENTION_REASON_" + x)
                for x in _reasons(r)
                if x in wanted
            ],
            idle_days=(at - since).days,
        )
        item.since_time.CopyFrom(ts(since))
    return out


async def dormant(
    uow: UnitOfWork, who: Principal, request: pb.ListDormantLeadsRequest, at: datetime
) -> pb.ListDormantLeadsResponse:
    grades = _grades(request.grades) or ["A", "B"]
    idle = validation.days(request.min_idle_days, "min_idle_days") or 14
    scope = LeadSearch(
        statuses=sorted(status.LIVE), team_path=request.team_path, regions=list(request.regions)
    )
    page = PageRequest.parse(request.page_size, request.page_token)
    query = query_key(
        "ListDormantLeads", who.user_id, request.team_path, grades, request.min_score, idle, scope.regions
    )
    found = await InsightRepository(uow).dormant(
        who,
        scope,
        grades=grades,
        min_score=request.min_score,
        idle_since=at - timedelta(days=idle),
        page=page,
        query=query,
    )
    out = pb.ListDormantLeadsResponse(next_page_token=found.next_page_token)
    for r in found.items:
        since = aware(r.last_activity_time) or aware(r.created_at) or at
        out.leads.add(lead=LEADS.present(who, r), idle_days=(at - since).days)
    return out
