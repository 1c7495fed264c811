"""Whether a gate's approval criterion applies to a deal.

A criterion requiring an APPROVED approval of a flow applies only when the flow's entry conditions
(its current trigger: amount / discount / product lines) match the deal, as they decide whether the
flow starts for it at all: the contract stage can require the "over 500,000" flow and hold only the
deals over 500,000. The decision is the domain's (`approvals.holds`, `gates.applies`); this module
reads the deal's facts and the flows' triggers for it.
"""

from __future__ import annotations

from collections.abc import Mapping

from kit.resources import UnitOfWork
from salesops.pipeline.v1 import approval_pb2 as ap
from salesops.pipeline.v1 import deal_pb2
from services.pipeline.approval_flows import condition_of
from services.pipeline.domain import approvals as d
from services.pipeline.domain import gates as g
from services.pipeline.domain import stages as s
from services.pipeline.repositories.approvals import ApprovalFlows


def deal_facts(deal: deal_pb2.Deal) -> d.Facts:
    """What a flow's trigger tests, from the deal (as CreateApproval defaults them)."""
    return d.Facts(
        amount_minor=deal.amount.amount_minor,
        currency=deal.amount.currency,
        discount_bps=deal.discount_bps,
        product_lines=sorted({li.product_line for li in deal.line_items if li.product_line}),
    )


def not_applicable(flows: Mapping[str, bytes], deal: deal_pb2.Deal) -> frozenset[str]:
    """The flows among `flows` (flow id -> current ApprovalFlow) whose trigger the deal does not meet.
    A flow that does not exist is not among them: its criterion stays required (and shows)."""
    facts = deal_facts(deal)
    return frozenset(
        flow_id
        for flow_id, body in flows.items()
        if not d.holds(condition_of(ap.ApprovalFlow.FromString(body).trigger), facts)
    )


async def flows_not_applicable(uow: UnitOfWork, model: s.StageModel, deal: deal_pb2.Deal) -> frozenset[str]:
    """The flows the model's criteria name that do not apply to `deal` (no query when none is named)."""
    named = g.approval_flow_ids(s.gate_nodes(model))
    if not named:
        return frozenset()
    return not_applicable(await ApprovalFlows(uow).current_bodies(sorted(named)), deal)


__all__ = ["deal_facts", "flows_not_applicable", "not_applicable"]
