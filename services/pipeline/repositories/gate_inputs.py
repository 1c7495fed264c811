"""What a gate dry run reads, in one statement: the deal, the stage model's version, the deal's
evidence kinds and its approvals' states (CheckGate is read-only and on the hot path)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, String, literal, null, select, true, union_all

from kit.resources import UnitOfWork
from services.pipeline.store import DealRow, EvidenceRow, settings
from services.pipeline.store_approvals import ApprovalRow

_EVIDENCE, _APPROVAL = "e", "a"


@dataclass(frozen=True)
class GateInputs:
    deal: DealRow
    model_version: int  # 0: the tenant never saved a model (the built-in default)
    evidence_types: set[str]
    approvals: dict[str, str]  # flow id -> state of the deal's latest approval of it


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
    ).where(EvidenceRow.tenant_id == tenant, EvidenceRow.deal_id == deal_id)
    approvals = select(
        literal(_APPROVAL, String),
        ApprovalRow.flow_id,
        ApprovalRow.state,
        ApprovalRow.submit_time,
        ApprovalRow.approval_id,
    ).where(ApprovalRow.tenant_id == tenant, ApprovalRow.deal_id == deal_id)
    facts = union_all(evidence, approvals).subquery("facts")
    stmt = (
        select(DealRow, version, facts.c.kind, facts.c.key, facts.c.state, facts.c.at, facts.c.id)
        .outerjoin(facts, true())
        .where(DealRow.deal_id == deal_id)
    )
    rows = (await uow.session.execute(stmt)).all()
    if not rows:
        return None
    kinds: set[str] = set()
    states: list[tuple[datetime, str, str, str]] = []
    for _, _, kind, key, state, at, ident in rows:
        if kind == _EVIDENCE:
            kinds.add(key)
        elif kind == _APPROVAL:
            states.append((at, ident, key, state))
    latest = {flow: state for _, _, flow, state in sorted(states)}  # the last submitted wins
    return GateInputs(rows[0][0], int(rows[0][1] or 0), kinds, latest)
