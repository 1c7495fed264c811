"""Manager views: metrics (MTTR, SLA compliance, conversion, funnel), the supervisor board, dormant leads.

Figures are aggregated by the database; the board and dormant lists read one keyset page at a time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, false, or_

from kit.auth import Principal
from kit.resources import PageRequest, UnitOfWork, query_key
from salesops.leads.v1 import enums_pb2, insights_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads import validation
from services.leads.convert import aware, enum_name, from_ts, ts
from services.leads.domain import status
from services.leads.presenters import LEADS
from services.leads.repositories import insights as q
from services.leads.repositories.leads import in_team, visible_to
from services.leads.store import LeadRow

DIMENSIONS = {
    insights_pb2.METRICS_DIMENSION_CHANNEL: LeadRow.channel,
    insights_pb2.METRICS_DIMENSION_SOURCE_CODE: LeadRow.source_code,
    insights_pb2.METRICS_DIMENSION_GRADE: LeadRow.grade,
    insights_pb2.METRICS_DIMENSION_REP: LeadRow.owner_user_id,
    insights_pb2.METRICS_DIMENSION_TEAM: LeadRow.team_path,
    insights_pb2.METRICS_DIMENSION_REGION: LeadRow.region,
}

REASONS: dict[int, ColumnElement[bool]] = {
    insights_pb2.ATTENTION_REASON_NO_FOLLOW_UP: q.NO_FOLLOW_UP,
    insights_pb2.ATTENTION_REASON_SLA_BREACHED: q.SLA_BREACHED,
    insights_pb2.ATTENTION_REASON_UNROUTED: q.UNROUTED,
    insights_pb2.ATTENTION_REASON_DUPLICATE_REVIEW: q.DUPLICATE_REVIEW,
}


def _scope(who: Principal, team_path: str) -> list[Any]:
    conds: list[Any] = [visible_to(who), LeadRow.status != status.MERGED]
    if team_path:
        conds.append(in_team(LeadRow.team_path, team_path))
    return conds


def _metrics(f: q.Figures) -> insights_pb2.LeadMetrics:
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


async def metrics(
    uow: UnitOfWork, who: Principal, request: pb.GetLeadMetricsRequest, at: datetime
) -> pb.GetLeadMetricsResponse:
    conds = _scope(who, request.team_path)
    start, end = from_ts(request.period.start_time), from_ts(request.period.end_time)
    if start:
        conds.append(LeadRow.created_at >= start)
    if end:
        conds.append(LeadRow.created_at < end)
    if request.regions:
        conds.append(LeadRow.region.in_(list(request.regions)))
    if request.channels:
        conds.append(LeadRow.channel.in_([enum_name(enums_pb2.LeadChannel, c) for c in request.channels]))
    if request.grades:
        conds.append(LeadRow.grade.in_([enum_name(enums_pb2.LeadGrade, g) for g in request.grades]))
    repo = q.InsightRepository(uow)
    totals = await repo.figures(conds, None)
    out = pb.GetLeadMetricsResponse(totals=_metrics(totals[0] if totals else q.Figures()))
    out.compute_time.CopyFrom(ts(at))
    column = DIMENSIONS.get(request.group_by)
    if column is not None:
        figures = [_metrics(f) for f in await repo.figures(conds, column)]
        figures.sort(key=lambda m: (-m.created_count, m.group_key))
        out.groups.extend(figures)
    return out


def _reasons(row: LeadRow) -> list[int]:
    reasons: list[int] = []
    if row.needs_attention and row.owner_user_id:
        reasons.append(insights_pb2.ATTENTION_REASON_NO_FOLLOW_UP)
    if row.sla_state == "BREACHED":
        reasons.append(insights_pb2.ATTENTION_REASON_SLA_BREACHED)
    if row.pool_entry_reason == "UNROUTED" and row.status == status.IN_POOL:
        reasons.append(insights_pb2.ATTENTION_REASON_UNROUTED)
    if row.duplicate_review_needed:
        reasons.append(insights_pb2.ATTENTION_REASON_DUPLICATE_REVIEW)
    return reasons


async def attention(
    uow: UnitOfWork, who: Principal, request: pb.ListAttentionItemsRequest, at: datetime
) -> pb.ListAttentionItemsResponse:
    conds = _scope(who, request.team_path)
    if request.owner_user_ids:
        conds.append(
            LeadRow.owner_user_id.in_([who.user_id if o == "me" else o for o in request.owner_user_ids])
        )
    if request.grades:
        conds.append(LeadRow.grade.in_([enum_name(enums_pb2.LeadGrade, g) for g in request.grades]))
    wanted = [int(r) for r in request.reasons] or list(REASONS)
    reasons = [REASONS[r] for r in wanted if r in REASONS] or [false()]
    page = PageRequest.parse(request.page_size, request.page_token)
    query = query_key(
        "ListAttentionItems",
        who.user_id,
        request.team_path,
        list(request.owner_user_ids),
        list(request.grades),
        wanted,
    )
    found = await q.InsightRepository(uow).attention(conds, reasons, page, query)
    out = pb.ListAttentionItemsResponse(
        next_page_token=found.next_page_token, total_size=found.total_size or 0
    )
    for r in found.items:
        since = aware(r.last_activity_time) or aware(r.assign_time) or aware(r.created_at) or at
        item = out.items.add(
            lead=LEADS.present(who, r),
            reasons=[x for x in _reasons(r) if x in wanted],
            idle_days=(at - since).days,
        )
        item.since_time.CopyFrom(ts(since))
    return out


async def dormant(
    uow: UnitOfWork, who: Principal, request: pb.ListDormantLeadsRequest, at: datetime
) -> pb.ListDormantLeadsResponse:
    grades = [enum_name(enums_pb2.LeadGrade, g) for g in request.grades] or ["A", "B"]
    idle = validation.days(request.min_idle_days, "min_idle_days") or 14
    cutoff = at - timedelta(days=idle)
    conds = _scope(who, request.team_path)
    conds.append(LeadRow.status.in_(sorted(status.LIVE)))
    intent: Any = LeadRow.grade.in_(grades)
    if request.min_score:
        intent = or_(intent, LeadRow.score >= request.min_score)
    conds.append(intent)
    conds.append(or_(LeadRow.last_activity_time.is_(None), LeadRow.last_activity_time < cutoff))
    conds.append(LeadRow.created_at < cutoff)
    if request.regions:
        conds.append(LeadRow.region.in_(list(request.regions)))
    page = PageRequest.parse(request.page_size, request.page_token)
    query = query_key(
        "ListDormantLeads",
        who.user_id,
        request.team_path,
        grades,
        request.min_score,
        idle,
        list(request.regions),
    )
    found = await q.InsightRepository(uow).dormant(conds, page, query)
    out = pb.ListDormantLeadsResponse(next_page_token=found.next_page_token)
    for r in found.items:
        since = aware(r.last_activity_time) or aware(r.created_at) or at
        out.leads.add(lead=LEADS.present(who, r), idle_days=(at - since).days)
    return out
