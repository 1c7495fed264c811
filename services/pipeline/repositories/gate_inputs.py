"""What a gate dry run reads, in one statement: the deal, the stage model's version, the deal's
evidence kinds, its approvals' states and the tenant's current approval flows (their triggers
decide whether an approval criterion applies to the deal). CheckGate is read-only and on the hot path."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, LargeBinary, String, literal, null, select, true, union_all

from kit.resources import UnitOfWork
from services.pipeline.store import DealRow, EvidenceRow, settings
from services.pipeline.store_approvals import ApprovalFlowRow, ApprovalRow

_EVIDENCE, _APPROVAL, _FLOW = "e", "a", "f"


@dataclass(frozen=True)
class GateInputs:
    deal: DealRow
    model_version: int  # 0: the tenant never saved a model (the built-in default)
    evidence_types: set[str]
    approvals: dict[str, str]  # flow id -> state of the deal's latest approval of it
    flows: dict[str, bytes]  # flow id -> its current version's ApprovalFlow (the tenant has a handful)


async def read(uow: UnitOfWork, deal_id: str, model_document: str) -> GateInputs | None:
    """None when the tenant has no such deal (`model_document`: the stage model's settings name). Each fact row rides beside the deal's columns (a deal
    has a handful), so the dry run costs one round trip whatever it needs."""
    tenant = uow.tenant
    version = (
        select(settings.current.c.version)
        .where(settings.current.c.tenant_id == tenant, settings.current.c.document == model_document)
        .scalar_subquery()
    )
    evidence = select(
        literal(_EVIDENCE, String).label("kind"),
        EvidenceRow.evidence_type_id.label("key"),
        literal("", String).label("state"),
        null().cast(DateTime(timezone=True)).label("at"),
        EvidenceRow.evidence_id.label("id"),
        null().cast(LargeBinary).label("body"),
    ).where(EvidenceRow.tenant_id == tenant, EvidenceRow.deal_id == deal_id)
    approvals = select(
        literal(_APPROVAL, String),
        ApprovalRow.flow_id,
        ApprovalRow.state,
        ApprovalRow.submit_time,
        ApprovalRow.approval_id,
        null().cast(LargeBinary),
    ).where(ApprovalRow.tenant_id == tenant, ApprovalRow.deal_id == deal_id)
    current_flows = select(
        literal(_FLOW, String),
        ApprovalFlowRow.flow_id,
        literal("", String),
        null().cast(DateTime(timezone=True)),
        literal("", String),
        ApprovalFlowRow.body,
    ).where(ApprovalFlowRow.tenant_id == tenant, ApprovalFlowRow.current.is_(True))
    facts = union_all(evidence, approvals, current_flows).subquery("facts")
    stmt = (
        select(
            DealRow, version, facts.c.kind, facts.c.key, facts.c.state, facts.c.at, facts.c.id, facts.c.body
        )
        .outerjoin(facts, true())
        .where(DealRow.deal_id == deal_id)
    )
    rows = (await uow.session.execute(stmt)).all()
    if not rows:
        return None
    kinds: set[str] = set()
    states: list[tuple[datetime, str, str, str]] = []
    flows: dict[str, bytes] = {}
    for _, _, kind, key, state, at, ident, body in rows:
        if kind == _EVIDENCE:
            kinds.add(key)
        elif kind == _APPROVAL:
            states.append((at, ident, key, state))
        elif kind == _FLOW:
            flows[key] = body
    latest = {flow: state for _, _, flow, state in sorted(states)}  # the last submitted wins
    return GateInputs(rows[0][0], int(rows[0][1] or 0), kinds, latest, flows)
