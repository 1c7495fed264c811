"""Approvals a stage entry starts: the entered stage's enabled on-entry flows whose trigger matches
the deal, one per flow and entry (its gate review), none while one of the flow already runs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from kit.auth import Principal
from kit.errors import AlreadyExists
from kit.resources import UnitOfWork
from salesops.pipeline.v1 import approval_pb2 as ap
from salesops.pipeline.v1 import events_pb2
from services.pipeline import approval_flows, gate_flows, stage_models
from services.pipeline.approvals import prepare
from services.pipeline.documents import deal_of
from services.pipeline.domain import approvals as d
from services.pipeline.repositories.approvals import ApprovalFlows, Approvals
from services.pipeline.repositories.deals import OPEN, Deals
from services.pipeline.store import DealRow


def entry_approval_id(review_id: str, flow_id: str) -> str:
    """One approval per flow and stage entry (the entry's gate review): a redelivered event starts nothing new."""
    return f"entry-{review_id}-{hashlib.sha256(flow_id.encode()).hexdigest()[:16]}"


async def _entry_flows(uow: UnitOfWork, flow_ids: Sequence[str], deal: DealRow) -> list[ap.ApprovalFlow]:
    """The enabled flows among `flow_ids` whose trigger matches the deal (amount, discount, product
    lines: the same test as a gate's approval criterion, `gate_flows`)."""
    out = []
    facts = gate_flows.deal_facts(deal_of(deal))
    for flow_id in flow_ids:
        row = await ApprovalFlows(uow).current(flow_id)
        if row is None or row.disabled:
            continue
        flow = approval_flows.document(row)
        if d.holds(approval_flows.condition_of(flow.trigger), facts):
            out.append(flow)
    return out


async def entry_approval_ids(uow: UnitOfWork, deal_id: str, stage_id: str, review_id: str) -> list[str]:
    """The approvals a forward entry of `stage_id` starts (MoveStageResponse.started_approval_ids): the
    consumer starts them after the commit under these ids; a flow already running for the deal is left."""
    model = await stage_models.current(uow)
    stage = next((st for st in model.stages if st.stage_id == stage_id), None)
    deal = await Deals(uow).find(deal_id)
    if stage is None or deal is None or not review_id:
        return []
    ids = []
    for flow in await _entry_flows(uow, list(stage.on_entry_approval_flow_ids), deal):
        if await Approvals(uow).running_for(deal_id, flow.flow_id) is None:
            ids.append(entry_approval_id(review_id, flow.flow_id))
    return ids


async def on_entry_runs(uow: UnitOfWork, changed: events_pb2.DealStageChanged, at: datetime) -> list[d.Run]:
    """The runs a forward stage entry starts: the stage's `on_entry_approval_flow_ids` whose trigger matches."""
    if changed.backward or not changed.gate_review_id:
        return []
    model = await stage_models.current(uow)
    stage = next((st for st in model.stages if st.stage_id == changed.to_stage_id), None)
    if stage is None or not stage.on_entry_approval_flow_ids:
        return []
    deal = await Deals(uow).find(changed.deal.deal_id)
    if deal is None or deal.stage_id != changed.to_stage_id or deal.status != OPEN:
        return []  # it moved on or closed since: the entry is over
    requester = changed.moved_by if not changed.moved_by.startswith("system:") else deal.owner_user_id
    who = Principal(requester, uow.tenant, frozenset({"admin"}), "", datetime.max.replace(tzinfo=at.tzinfo))
    runs = []
    for flow in await _entry_flows(uow, stage.on_entry_approval_flow_ids, deal):
        request = ap.Approval(
            approval_id=entry_approval_id(changed.gate_review_id, flow.flow_id),
            flow_id=flow.flow_id,
            kind=flow.kind,
            deal_id=deal.deal_id,
            title=f"{flow.display_name}: {deal.title}"[:200],
        )
        try:
            run = await prepare(uow, who, request, at)
        except AlreadyExists:
            continue  # one of this flow already runs for the deal
        run.org_path = deal.org_path
        runs.append(run)
    return runs


__all__ = ["entry_approval_id", "entry_approval_ids", "on_entry_runs"]
