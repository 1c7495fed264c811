"""Stage moves and their dry run. Never commit.

MoveStage: a forward move runs the gate of every stage entered and is recorded as
a gate review either way; a refused one changes nothing else and is answered
FAILED_PRECONDITION after the review is committed (so the refusal is on record).
A backward move needs a note and runs no gate; the current stage is a no-op.
CheckGate runs the same engine and records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kit.auth import Principal
from kit.errors import FailedPrecondition, InvalidArgument, NotFound, PreconditionViolation
from kit.resources import UnitOfWork
from salesops.pipeline.v1 import deal_pb2, events_pb2, stage_model_pb2, types_pb2
from services.pipeline import access, criteria, discipline, events, gate_flows, gating, stage_models
from services.pipeline.convert import aware, bounded_text
from services.pipeline.documents import body_of, deal_of, tracked
from services.pipeline.domain import history
from services.pipeline.domain import stages as s
from services.pipeline.domain.gates import DealFacts
from services.pipeline.presenters import review_proto
from services.pipeline.repositories import gate_inputs
from services.pipeline.repositories.approvals import Approvals
from services.pipeline.repositories.deals import OPEN, Deals
from services.pipeline.repositories.history import DealChanges
from services.pipeline.store import DealRow

SYSTEM = "system:pipeline"


@dataclass
class Moved:
    row: DealRow
    review: deal_pb2.GateReview | None  # None for backward and no-op moves
    refused: FailedPrecondition | None = None


async def _facts(uow: UnitOfWork, model: s.StageModel, row: DealRow) -> DealFacts:
    evidence = await Deals(uow).evidence_types(row.deal_id)
    approved = await Approvals(uow).latest_states(row.deal_id)  # an APPROVED-approval criterion reads these
    deal = deal_of(row)
    skip = await gate_flows.flows_not_applicable(uow, model, deal)  # flows whose trigger the deal misses
    return criteria.facts_of(model, deal, evidence, approved, skip)


def _review(model: s.StageModel, row: DealRow, to_stage_id: str, facts: DealFacts, field: str) -> s.Review:
    try:
        return s.review_move(model, row.stage_id, to_stage_id, facts)
    except s.UnknownStage:
        raise InvalidArgument.field(field, f"no stage {to_stage_id!r} in the stage model") from None


async def move_stage(
    uow: UnitOfWork, who: Principal, deal_id: str, to_stage_id: str, etag: str, note: str, at: datetime
) -> Moved:
    if not to_stage_id:
        raise InvalidArgument.field("to_stage_id", "required")
    bounded_text(note, "note")
    repo = Deals(uow)
    row = await repo.visible(who, deal_id, for_update=True)
    repo.check_etag(row, etag)
    if row.status != OPEN:
        raise FailedPrecondition("only open deals move between stages", reason="DEAL_NOT_OPEN")
    _, model = await stage_models.domain_model(uow)
    review = _review(model, row, to_stage_id, await _facts(uow, model, row), "to_stage_id")
    if review.direction is s.Direction.SAME:
        return Moved(row, None)
    if review.direction is s.Direction.BACKWARD and not note.strip():
        raise InvalidArgument.field("note", "a backward move needs a note saying why")
    recorded = None
    if review.direction is s.Direction.FORWARD:
        recorded = await gating.record(uow, row, review, who.user_id, at)
        if not review.passed:
            return Moved(row, recorded, gating.refusal(review, recorded.review_id))
    await _enter(uow, who, row, model, review, note, at, recorded.review_id if recorded else "")
    return Moved(row, recorded)


async def _enter(
    uow: UnitOfWork,
    who: Principal,
    row: DealRow,
    model: s.StageModel,
    review: s.Review,
    note: str,
    at: datetime,
    review_id: str,
) -> None:
    before = tracked(row)
    previous_probability = row.probability
    from_stage, entered = row.stage_id, aware(row.stage_entered_at)
    stage = model.stage(review.to_stage_id)
    assert stage is not None
    deal = deal_of(row)
    move = deal.stage_history.add(
        from_stage_id=from_stage, to_stage_id=stage.stage_id, moved_by=who.user_id, note=note
    )
    move.transition_time.FromDatetime(at)
    move.dwell.FromTimedelta(at - entered)
    if stage.default_category and stage.default_category != "FORECAST_CATEGORY_UNSPECIFIED":
        deal.forecast_category = types_pb2.ForecastCategory.Value(stage.default_category)
        row.forecast_category = types_pb2.ForecastCategory.Name(deal.forecast_category).removeprefix(
            "FORECAST_CATEGORY_"
        )
    row.body = body_of(deal)
    row.stage_id = stage.stage_id
    row.stage_model_version = model.version
    row.probability, row.stage_probability = review.probability.percent, review.probability.base
    row.weighted_minor = s.weighted(row.amount_minor, row.probability)
    # A move counts as the weekly update: the dwell clock restarts and a frozen deal thaws.
    row.stage_entered_at = at
    await discipline.touched(uow, row, who.user_id, at, new_stage=True)
    row.updated_at, row.updated_by = at, who.user_id
    await Deals(uow).update_if_etag(row, "")
    await DealChanges(uow).append(row.deal_id, history.changes(before, tracked(row)), who.user_id, at)
    changed = events_pb2.DealStageChanged(
        deal=await events.deal_context(uow, row),
        from_stage_id=from_stage,
        to_stage_id=stage.stage_id,
        backward=review.direction is s.Direction.BACKWARD,
        previous_probability_percent=previous_probability,
        gate_review_id=review_id,
        moved_by=who.user_id,
    )
    changed.dwell.FromTimedelta(at - entered)
    await uow.emit(events.DEAL_STAGE_CHANGED, changed, subject=row.deal_id)


async def check_gate(
    uow: UnitOfWork, who: Principal, deal_id: str, to_stage_id: str, to_won: bool, at: datetime
) -> deal_pb2.GateReview:
    """The dry run: the same review a move would get, recorded nowhere. One read-only statement
    fetches the deal and every fact the gates look at; the parsed model is reused while its version holds."""
    found = await gate_inputs.read(uow, deal_id, stage_models.STORE.document)
    if found is None or not access.can_view(who, found.deal.owner_user_id, found.deal.org_path):
        raise NotFound(Deals.resource, deal_id)
    row = found.deal
    model = await stage_models.engine_model_at(uow, found.model_version)
    deal = deal_of(row)
    skip = gate_flows.not_applicable(found.flows, deal)
    facts = criteria.facts_of(model, deal, found.evidence_types, found.approvals, skip)
    target = to_stage_id or s.default_target(model, row.stage_id)
    if to_won or target == s.WON:
        review = s.review_won(model, row.stage_id, facts)
    else:
        review = _review(model, row, target, facts, "to_stage_id")
    return review_proto(review, row.deal_id, who.user_id, at)


async def reevaluate_open_deals(
    uow: UnitOfWork, saved: stage_model_pb2.StageModel, mapping: dict[str, str], at: datetime
) -> int:
    """After a model change: open deals of removed stages move by `mapping`, every open deal gets
    the probability of its stage and rules in the new version. Returns the deals changed.

    A mapped deal enters its new stage through the gates like any deal created there (every gate up
    to it), so a mapping cannot carry deals past the moment of truth; if any is refused, the whole
    model change is (FAILED_PRECONDITION listing each deal's missing items) and nothing is saved.
    One pass over the open deals in Python: a model changes rarely and by an admin.
    """
    model = criteria.model_of(saved)
    repo = Deals(uow)
    affected = 0
    refused: list[PreconditionViolation] = []
    for row in await repo.open_deals():
        mapped = model.stage(row.stage_id) is None
        stage_id = mapping.get(row.stage_id, "") if mapped else row.stage_id
        stage = model.stage(stage_id)
        if stage is None:
            continue  # refused before saving (STAGE_MAPPING_REQUIRED); nothing to do
        facts = await _facts(uow, model, row)
        if mapped:
            review = s.review_move(model, "", stage_id, facts)
            refused += [
                PreconditionViolation(
                    f"GATE_{g.item.kind.value}", f"{row.deal_id}/{g.stage_id}/{g.item.key}", g.item.label
                )
                for g in review.missing
            ]
        p = s.probability(stage, facts)
        before = tracked(row)
        if (stage_id, p.percent, p.base, model.version) == (
            row.stage_id,
            row.probability,
            row.stage_probability,
            row.stage_model_version,
        ):
            continue
        row.stage_id, row.stage_model_version = stage_id, model.version
        row.probability, row.stage_probability = p.percent, p.base
        row.weighted_minor = s.weighted(row.amount_minor, row.probability)
        row.updated_at, row.updated_by = at, SYSTEM
        await repo.update_if_etag(row, "")
        changed = history.changes(before, tracked(row))
        await DealChanges(uow).append(row.deal_id, changed, SYSTEM, at)
        affected += 1
    if refused:
        raise FailedPrecondition(
            "stage_mapping would move deals past gates they do not pass; map them to earlier stages",
            refused,
            reason=gating.GATE_REJECTED,
        )
    return affected
