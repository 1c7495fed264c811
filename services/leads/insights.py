"""Manager views: metrics (MTTR, SLA compliance, conversion, funnel), the supervisor board, dormant leads."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from salesops.leads.v1 import enums_pb2, insights_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads import access, paging
from services.leads.convert import aware, from_ts, lead_proto, now, short, ts
from services.leads.store import LeadRow

DIMENSIONS = {
    insights_pb2.METRICS_DIMENSION_CHANNEL: "channel",
    insights_pb2.METRICS_DIMENSION_SOURCE_CODE: "source_code",
    insights_pb2.METRICS_DIMENSION_GRADE: "grade",
    insights_pb2.METRICS_DIMENSION_REP: "owner_user_id",
    insights_pb2.METRICS_DIMENSION_TEAM: "team_path",
    insights_pb2.METRICS_DIMENSION_REGION: "region",
}


def _scope(who: Principal, team_path: str) -> list[Any]:
    conds: list[Any] = [access.visible(who), LeadRow.status != "MERGED"]
    if team_path:
        conds.append(or_(LeadRow.team_path == team_path, LeadRow.team_path.startswith(team_path + "/")))
    return conds


def _figures(key: str, rows: list[LeadRow]) -> insights_pb2.LeadMetrics:
    m = insights_pb2.LeadMetrics(group_key=key, group_label=key or "(none)")
    responses: list[float] = []
    for r in rows:
        m.created_count += 1
        if r.assign_time or r.owner_user_id or r.status in ("CONVERTED", "DISQUALIFIED", "WORKING"):
            m.assigned_count += 1
        if r.sla_response_time is not None:
            m.responded_count += 1
            if r.sla_business_seconds is not None:
                responses.append(r.sla_business_seconds)
        m.converted_count += r.status == "CONVERTED"
        m.disqualified_count += r.status == "DISQUALIFIED"
        m.recycled_count += r.pool_entry_reason == "RECYCLED"
        applicable = r.sla_state in ("MET", "RESPONDED_LATE", "BREACHED") or r.sla_breach_time is not None
        if applicable:
            m.sla_applicable_count += 1
            m.sla_met_count += r.sla_state == "MET" and r.sla_breach_time is None
    if responses:
        m.mean_time_to_respond.FromTimedelta(timedelta(seconds=statistics.fmean(responses)))
        responses.sort()
        m.p90_time_to_respond.FromTimedelta(
            timedelta(seconds=responses[min(len(responses) - 1, int(0.9 * len(responses)))])
        )
    m.sla_compliance_ratio = m.sla_met_count / m.sla_applicable_count if m.sla_applicable_count else 0.0
    m.conversion_ratio = m.converted_count / m.created_count if m.created_count else 0.0
    return m


async def metrics(
    session: AsyncSession, who: Principal, request: pb.GetLeadMetricsRequest
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
        conds.append(LeadRow.channel.in_([short(enums_pb2.LeadChannel, c) for c in request.channels]))
    if request.grades:
        conds.append(LeadRow.grade.in_([short(enums_pb2.LeadGrade, g) for g in request.grades]))
    rows = list((await session.execute(select(LeadRow).where(*conds))).scalars())
    out = pb.GetLeadMetricsResponse(totals=_figures("", rows))
    out.compute_time.CopyFrom(ts(now()))
    column = DIMENSIONS.get(request.group_by)
    if column:
        groups: dict[str, list[LeadRow]] = defaultdict(list)
        for r in rows:
            groups[str(getattr(r, column) or "")].append(r)
        figures = [_figures(k, v) for k, v in groups.items()]
        figures.sort(key=lambda m: (-m.created_count, m.group_key))
        out.groups.extend(figures)
    return out


async def attention(
    session: AsyncSession, who: Principal, request: pb.ListAttentionItemsRequest
) -> pb.ListAttentionItemsResponse:
    conds = _scope(who, request.team_path)
    conds.append(
        or_(
            LeadRow.needs_attention.is_(True),
            LeadRow.sla_state == "BREACHED",
            LeadRow.pool_entry_reason == "UNROUTED",
            LeadRow.duplicate_review_needed.is_(True),
        )
    )
    if request.owner_user_ids:
        conds.append(
            LeadRow.owner_user_id.in_([who.user_id if o == "me" else o for o in request.owner_user_ids])
        )
    if request.grades:
        conds.append(LeadRow.grade.in_([short(enums_pb2.LeadGrade, g) for g in request.grades]))
    rows = list((await session.execute(select(LeadRow).where(*conds))).scalars())
    at = now()
    items: list[insights_pb2.AttentionItem] = []
    for r in rows:
        reasons = []
        if r.needs_attention and r.owner_user_id:
            reasons.append(insights_pb2.ATTENTION_REASON_NO_FOLLOW_UP)
        if r.sla_state == "BREACHED":
            reasons.append(insights_pb2.ATTENTION_REASON_SLA_BREACHED)
        if r.pool_entry_reason == "UNROUTED" and r.status == "IN_POOL":
            reasons.append(insights_pb2.ATTENTION_REASON_UNROUTED)
        if r.duplicate_review_needed:
            reasons.append(insights_pb2.ATTENTION_REASON_DUPLICATE_REVIEW)
        if request.reasons:
            reasons = [x for x in reasons if x in request.reasons]
        if not reasons:
            continue
        since = aware(r.last_activity_time) or aware(r.assign_time) or aware(r.created_at) or at
        item = insights_pb2.AttentionItem(
            lead=lead_proto(r, who, full=False), reasons=reasons, idle_days=(at - since).days
        )
        item.since_time.CopyFrom(ts(since))
        items.append(item)
    items.sort(key=lambda i: (i.since_time.seconds, i.lead.lead_id))
    offset, size = paging.page(request.page_token, request.page_size)
    chunk = items[offset : offset + size]
    token = paging.token(offset + size) if offset + size < len(items) else ""
    return pb.ListAttentionItemsResponse(items=chunk, total_size=len(items), next_page_token=token)


async def dormant(
    session: AsyncSession, who: Principal, request: pb.ListDormantLeadsRequest
) -> pb.ListDormantLeadsResponse:
    grades = [short(enums_pb2.LeadGrade, g) for g in request.grades] or ["A", "B"]
    idle = paging.days(request.min_idle_days, "min_idle_days") or 14
    at = now()
    cutoff = at - timedelta(days=idle)
    conds = _scope(who, request.team_path)
    conds.append(LeadRow.status.in_(("IN_POOL", "ASSIGNED", "WORKING")))
    intent: Any = LeadRow.grade.in_(grades)
    if request.min_score:
        intent = or_(intent, LeadRow.score >= request.min_score)
    conds.append(intent)
    conds.append(or_(LeadRow.last_activity_time.is_(None), LeadRow.last_activity_time < cutoff))
    conds.append(LeadRow.created_at < cutoff)
    if request.regions:
        conds.append(LeadRow.region.in_(list(request.regions)))
    offset, size = paging.page(request.page_token, request.page_size)
    rows = list(
        (
            await session.execute(
                select(LeadRow)
                .where(*conds)
                .order_by(LeadRow.score.desc(), LeadRow.lead_id)
                .offset(offset)
                .limit(size + 1)
            )
        ).scalars()
    )
    out = pb.ListDormantLeadsResponse()
    for r in rows[:size]:
        since = aware(r.last_activity_time) or aware(r.created_at) or at
        out.leads.add(lead=lead_proto(r, who, full=False), idle_days=(at - since).days)
    out.next_page_token = paging.token(offset + size) if len(rows) > size else ""
    return out
