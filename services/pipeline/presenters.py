"""The one place per resource deciding what a viewer sees; every response path goes through it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kit.auth import Principal
from kit.errors import NotFound
from salesops.pipeline.v1 import deal_pb2, settings_pb2, stage_model_pb2
from services.pipeline import access, members
from services.pipeline.convert import ts
from services.pipeline.documents import deal_of
from services.pipeline.domain import gates as g
from services.pipeline.domain.stages import Review
from services.pipeline.store import DealChangeRow, DealRow, EvidenceRow, GateReviewRow, MemberProfileRow

KIND = {
    g.Kind.REQUIRED_FIELD: deal_pb2.GATE_ITEM_KIND_REQUIRED_FIELD,
    g.Kind.EVIDENCE: deal_pb2.GATE_ITEM_KIND_EVIDENCE,
    g.Kind.CHECKLIST: deal_pb2.GATE_ITEM_KIND_CHECKLIST,
    g.Kind.APPROVAL: deal_pb2.GATE_ITEM_KIND_APPROVAL,
}


@dataclass(frozen=True)
class DealView:
    row: DealRow
    full: bool = True


class DealPresenter:
    def present(self, viewer: Principal, item: DealView) -> deal_pb2.Deal:
        row = item.row
        if not access.can_view(viewer, row.owner_user_id, row.org_path):
            raise NotFound("pipeline.Deal", row.deal_id)
        deal = deal_of(row)
        if not item.full:
            deal.ClearField("stage_history")
        return deal


class StageModelPresenter:
    """Every member of the tenant reads the model (it is what gates them); only admins change it."""

    def present(self, viewer: Principal, item: stage_model_pb2.StageModel) -> stage_model_pb2.StageModel:
        return item


class DealChangePresenter:
    """Changes are read through their deal (visibility checked there); nothing is masked."""

    def present(self, viewer: Principal, item: DealChangeRow) -> deal_pb2.DealChange:
        return deal_pb2.DealChange(
            change_id=item.change_id,
            deal_id=item.deal_id,
            field=item.field,
            old_value=item.old_value,
            new_value=item.new_value,
            changed_by=item.changed_by,
            change_time=ts(item.changed_at),
        )


class EvidencePresenter:
    """Evidence is read through its deal (visibility checked there)."""

    def present(self, viewer: Principal, item: EvidenceRow) -> deal_pb2.DealEvidence:
        return deal_pb2.DealEvidence.FromString(item.body)


class MemberProfilePresenter:
    def present(self, viewer: Principal, item: MemberProfileRow) -> settings_pb2.MemberProfile:
        if not members.can_view(viewer, item):
            raise NotFound("pipeline.MemberProfile", item.user_id)
        return members.document(item)


class GateReviewPresenter:
    def present(self, viewer: Principal, item: GateReviewRow) -> deal_pb2.GateReview:
        return deal_pb2.GateReview.FromString(item.body)


def review_proto(
    review: Review, deal_id: str, by: str, at: datetime, review_id: str = ""
) -> deal_pb2.GateReview:
    """A domain review on the wire (CheckGate answers it as is; MoveStage records it)."""
    won = review.to_stage_id == "won"
    msg = deal_pb2.GateReview(
        review_id=review_id,
        deal_id=deal_id,
        from_stage_id=review.from_stage_id,
        to_stage_id="" if won else review.to_stage_id,
        to_won=won,
        outcome=deal_pb2.GATE_OUTCOME_PASSED if review.passed else deal_pb2.GATE_OUTCOME_REJECTED,
        resulting_probability_percent=review.probability.percent,
        stage_model_version=review.model_version,
        reviewed_by=by,
        review_time=ts(at),
    )
    for gi in review.items:
        msg.items.add(
            kind=KIND[gi.item.kind],
            key=gi.item.key,
            display_name=gi.item.label,
            stage_id=gi.stage_id,
            satisfied=gi.item.satisfied,
            detail=gi.item.hint,
            branch=gi.item.branch,
            negated=gi.item.negated,
        )
    return msg


DEALS = DealPresenter()
STAGE_MODELS = StageModelPresenter()
CHANGES = DealChangePresenter()
REVIEWS = GateReviewPresenter()
EVIDENCE = EvidencePresenter()
MEMBERS = MemberProfilePresenter()

__all__ = ["CHANGES", "DEALS", "EVIDENCE", "MEMBERS", "REVIEWS", "STAGE_MODELS", "DealView", "review_proto"]
