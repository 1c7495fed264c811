"""What a gate dry run reads, in one statement: the deal, the stage model's version, the deal's
evidence kinds, its approvals' states and the tenant's current approval flows (their triggers
decide whether an approval criterion applies to the deal). CheckGate is read-only and on the hot path.

The statement is built once, with bound parameters, and runs on the unit of work's connection
(Core, not the ORM session): the ORM path rebuilt the union, re-derived its cache key (the tenant
option makes a new statement each call) and loaded an entity per fact row, about half of a
CheckGate's CPU. The tenant is therefore a bound parameter of every part of it, deals included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    LargeBinary,
    String,
    bindparam,
    inspect,
    literal,
    null,
    select,
    true,
    union_all,
)

from kit.resources import UnitOfWork
from services.pipeline.store import DealRow, EvidenceRow, settings
from services.pipeline.store_approvals import ApprovalFlowRow, ApprovalRow

_EVIDENCE, _APPROVAL, _FLOW = "e", "a", "f"


@dataclass(frozen=True)
class GateInputs:
    deal: DealRow  # detached: read for the dry run, never written back
    model_version: int  # 0: the tenant never saved a model (the built-in default)
    evidence_types: set[str]
    approvals: dict[str, str]  # flow id -> state of the deal's latest approval of it
    flows: dict[str, bytes]  # flow id -> its current version's ApprovalFlow (the tenant has a handful)


def _statement() -> Any:
    tenant, deal_id = bindparam("tenant", type_=String), bindparam("deal_id", type_=String)
    current = settings.current
    version = (
        select(current.c.version)
        .where(current.c.tenant_id == tenant, current.c.document == bindparam("document", type_=String))
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
    deals = DealRow.__table__
    return (
        select(
            *deals.c,
            version.label("model_version"),
            facts.c.kind,
            facts.c.key,
            facts.c.state,
            facts.c.at,
            facts.c.id,
            facts.c.body,
        )
        .outerjoin(facts, true())
        .where(deals.c.tenant_id == tenant, deals.c.deal_id == deal_id)
    )


_STATEMENT = _statement()
# Attribute name of each deals column, in the statement's order (the deal's part of every row).
_DEAL_KEYS = tuple(inspect(DealRow).get_property_by_column(c).key for c in DealRow.__table__.c)


async def read(uow: UnitOfWork, deal_id: str, model_document: str) -> GateInputs | None:
    """None when the tenant has no such deal (`model_document`: the stage model's settings name).
    Each fact row rides beside the deal's columns (a deal has a handful), so the dry run costs one
    round trip whatever it needs."""
    conn = await uow.session.connection()
    params = {"tenant": uow.tenant, "deal_id": deal_id, "document": model_document}
    rows = (await conn.execute(_STATEMENT, params)).all()
    if not rows:
        return None
    n = len(_DEAL_KEYS)
    kinds: set[str] = set()
    states: list[tuple[datetime, str, str, str]] = []
    flows: dict[str, bytes] = {}
    for row in rows:
        kind, key, state, at, ident, body = row[n + 1 :]
        if kind == _EVIDENCE:
            kinds.add(key)
        elif kind == _APPROVAL:
            states.append((at, ident, key, state))
        elif kind == _FLOW:
            flows[key] = body
    latest = {flow: state for _, _, flow, state in sorted(states)}  # the last submitted wins
    deal = DealRow(**dict(zip(_DEAL_KEYS, rows[0][:n], strict=True)))
    return GateInputs(deal, int(rows[0][n] or 0), kinds, latest, flows)
