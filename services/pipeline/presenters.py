"""The one place per resource deciding what a viewer sees; every response path goes through it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from kit.auth import Principal
from kit.errors import NotFound
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import (
    customer_pb2,
    deal_pb2,
    forecast_pb2,
    reconciliation_pb2,
    settings_pb2,
    stage_model_pb2,
    target_pb2,
    types_pb2,
)
from services.pipeline import access, members, targets
from services.pipeline.convert import enum_value, ts
from services.pipeline.customers import customer_message
from services.pipeline.documents import deal_of
from services.pipeline.domain import forecast as f
from services.pipeline.domain import gates as g
from services.pipeline.domain import targets as tg
from services.pipeline.domain.stages import Review
from services.pipeline.store import (
    DealChangeRow,
    DealRow,
    EvidenceRow,
    GateReviewRow,
    MemberProfileRow,
    SnapshotRow,
)
from services.pipeline.store_customers import CustomerRow, FinanceFactRow, ReconciliationIssueRow
from services.pipeline.store_targets import TargetCalibrationRow, TargetRow

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


@dataclass(frozen=True)
class SnapshotView:
    row: SnapshotRow
    full: bool = True
    org_path: str = ""  # the request's scope, within the viewer's


class SnapshotPresenter:
    """Admins see the company and every row; others the rows of their scope (a rep: their own row)."""

    def present(self, viewer: Principal, item: SnapshotView) -> forecast_pb2.ForecastSnapshot:
        snap = forecast_pb2.ForecastSnapshot.FromString(item.row.body)
        keep = [r for r in snap.rows if item.full and _row_visible(viewer, r, item.org_path.strip("/"))]
        del snap.rows[:]
        snap.rows.extend(keep)
        if not access.sees_all(viewer):
            snap.ClearField("company_totals")
        return snap


def _row_visible(viewer: Principal, row: forecast_pb2.ForecastRow, scope: str) -> bool:
    if scope and not (row.org_path == scope or row.org_path.startswith(scope + "/")):
        return False
    if access.sees_all(viewer):
        return True
    if row.level == types_pb2.ORG_LEVEL_REP and row.key == viewer.user_id:
        return True
    return viewer.has_role(*access.MANAGERS) and bool(row.org_path) and viewer.org_contains(row.org_path)


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


def totals_proto(t: f.Totals, currency: str) -> forecast_pb2.ForecastTotals:
    def _money(minor: int) -> Money:
        return Money(amount_minor=minor, currency=currency)

    msg = forecast_pb2.ForecastTotals(
        weighted_amount=_money(t.weighted),
        won_amount=_money(t.won_amount),
        won_deal_count=t.won_count,
        open_deal_count=t.open_count,
        frozen_amount=_money(t.frozen_amount),
        frozen_deal_count=t.frozen_count,
    )
    msg.open_pipeline_amount.CopyFrom(_money(t.open_amount))
    _coverage(msg, t, _money)  # always answered: NO_TARGET where no target was put beside the totals
    for name in ("PIPELINE", "BEST_CASE", "COMMIT", "CLOSED", "OMITTED"):
        c = t.categories.get(name)
        if c is not None:
            msg.categories.add(
                category=enum_value(types_pb2.ForecastCategory, name),
                amount=_money(c.amount),
                weighted_amount=_money(c.weighted),
                deal_count=c.count,
            )
    return msg


def _coverage(msg: forecast_pb2.ForecastTotals, t: f.Totals, money: Callable[[int], Money]) -> None:
    cov = tg.coverage(t.open_amount, t.won_amount, t.target)
    msg.coverage_state = enum_value(target_pb2.CoverageState, cov.state.value)
    if t.target is not None:
        msg.target_amount.CopyFrom(money(t.target))
        msg.challenge_target_amount.CopyFrom(money(t.challenge if t.challenge is not None else t.target))
    if cov.remaining is not None:
        msg.remaining_target_amount.CopyFrom(money(cov.remaining))
    if cov.ratio is not None:
        msg.coverage_ratio = cov.ratio


DEALS = DealPresenter()
STAGE_MODELS = StageModelPresenter()
CHANGES = DealChangePresenter()
REVIEWS = GateReviewPresenter()
EVIDENCE = EvidencePresenter()
MEMBERS = MemberProfilePresenter()
SNAPSHOTS = SnapshotPresenter()

__all__ = [
    "CHANGES",
    "DEALS",
    "EVIDENCE",
    "MEMBERS",
    "REVIEWS",
    "SNAPSHOTS",
    "STAGE_MODELS",
    "DealView",
    "SnapshotView",
    "review_proto",
    "totals_proto",
]


@dataclass(frozen=True)
class CustomerItem:
    """A customer row with the leads it came from (read with it; the row's visibility is checked in SQL)."""

    row: CustomerRow
    lead_ids: tuple[str, ...] = ()


class CustomerPresenter:
    """Customers are found through `Customers.visible` / `customers_visible_to` (owner, org, or a visible
    deal of theirs); what such a viewer sees of the account is all of it."""

    def present(self, viewer: Principal, item: CustomerItem) -> customer_pb2.Customer:
        return customer_message(item.row, list(item.lead_ids))


class ReconciliationIssuePresenter:
    """Issues are for the deal's owner, their managers and admins (unmatched facts: admins only)."""

    def present(
        self, viewer: Principal, item: ReconciliationIssueRow
    ) -> reconciliation_pb2.ReconciliationIssue:
        if not access.can_view(viewer, item.owner_user_id, item.org_path):
            raise NotFound("pipeline.ReconciliationIssue", item.issue_id)
        msg = reconciliation_pb2.ReconciliationIssue.FromString(item.body)
        msg.issue_id = item.issue_id
        return msg


def fact_message(row: FinanceFactRow) -> reconciliation_pb2.FinanceFact:
    """The stored fact as given, with what pipeline made of it (id, match, ingest time)."""
    msg = reconciliation_pb2.FinanceFact.FromString(row.body)
    msg.fact_id, msg.matched_deal_id = row.fact_id, row.deal_id
    msg.ingest_time.CopyFrom(ts(row.ingested_at))
    matched = reconciliation_pb2.FACT_MATCH_STATUS_MATCHED
    msg.match_status = matched if row.deal_id else reconciliation_pb2.FACT_MATCH_STATUS_UNMATCHED
    return msg


class FinanceFactPresenter:
    """Facts are listed within `facts_visible_to` (their deal's scope; unmatched for admins)."""

    def present(self, viewer: Principal, item: FinanceFactRow) -> reconciliation_pb2.FinanceFact:
        return fact_message(item)


CUSTOMERS = CustomerPresenter()
ISSUES = ReconciliationIssuePresenter()
FACTS = FinanceFactPresenter()


class TargetPresenter:
    """A target is seen by its rep and owner, the managers of its org and admins (targets.can_view)."""

    def present(self, viewer: Principal, item: TargetRow) -> target_pb2.Target:
        if not targets.can_view(viewer, item):
            raise NotFound("pipeline.Target", item.target_id)
        return targets.document(item)


class TargetCalibrationPresenter:
    """A calibration is seen by whoever sees its target (its copied rep, owner and org path)."""

    def present(self, viewer: Principal, item: TargetCalibrationRow) -> target_pb2.TargetCalibration:
        if not (
            access.sees_all(viewer)
            or viewer.user_id in (item.user_id, item.owner_user_id)
            or access.manages(viewer, item.org_path)
        ):
            raise NotFound("pipeline.TargetCalibration", item.calibration_id)
        msg = target_pb2.TargetCalibration.FromString(item.body)
        msg.audit.create_time.CopyFrom(ts(item.created_at))
        msg.audit.created_by = item.created_by
        return msg


TARGETS = TargetPresenter()
CALIBRATIONS = TargetCalibrationPresenter()
