"""Closing and keeping deals current: MarkWon (through the won gate), MarkLost, ReopenDeal, ConfirmDeal.

MarkWon is a gate review like a move (the model's won criteria), recorded either
way; a refused one is answered FAILED_PRECONDITION after the commit. Every change
appends to the history and stages its event. Never commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kit.auth import Principal
from kit.errors import FailedPrecondition, InvalidArgument
from kit.resources import UnitOfWork
from salesops.pipeline.v1 import events_pb2, stage_model_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import criteria, discipline, events, gate_flows, gating, stage_models
from services.pipeline.convert import aware, bounded_text, date_proto, enum_name, enum_value, optional_date
from services.pipeline.deals import MAX_AMOUNT_MINOR, USER_CATEGORIES, ZONE_SLACK
from services.pipeline.documents import body_of, deal_of, tracked
from services.pipeline.domain import history
from services.pipeline.domain import stages as s
from services.pipeline.moves import Moved
from services.pipeline.repositories.approvals import Approvals
from services.pipeline.repositories.deals import OPEN, Deals
from services.pipeline.repositories.history import DealChanges
from services.pipeline.store import DealRow

WON, LOST = "WON", "LOST"


async def _deal(uow: UnitOfWork, who: Principal, deal_id: str, etag: str, status: str) -> DealRow:
    repo = Deals(uow)
    row = await repo.visible(who, deal_id, for_update=True)
    repo.check_etag(row, etag)
    if row.status != status:
        raise FailedPrecondition(
            f"the deal is {row.status.lower()}, not {status.lower()}", reason=f"DEAL_NOT_{status}"
        )
    return row


async def _save(uow: UnitOfWork, who: Principal, row: DealRow, before: dict[str, str], at: datetime) -> None:
    row.weighted_minor = s.weighted(row.amount_minor, row.probability)
    row.updated_at, row.updated_by = at, who.user_id
    await Deals(uow).update_if_etag(row, "")
    await DealChanges(uow).append(row.deal_id, history.changes(before, tracked(row)), who.user_id, at)


def _future_date(value: Any, field: str, at: datetime) -> None:
    d = optional_date(value, field)
    if d is not None and d < (at - ZONE_SLACK).date():
        raise InvalidArgument.field(field, "must not be in the past")


async def mark_won(uow: UnitOfWork, who: Principal, req: pb.MarkWonRequest, at: datetime) -> Moved:
    row = await _deal(uow, who, req.deal_id, req.etag, OPEN)
    close = optional_date(req.close_date, "close_date") or at.date()
    if req.HasField("won_amount") and req.won_amount.currency != row.currency:
        raise InvalidArgument.field("won_amount.currency", f"the deal is in {row.currency}")
    _, model = await stage_models.domain_model(uow)
    evidence = await Deals(uow).evidence_types(row.deal_id)
    # Won criteria may require an APPROVED approval, as a stage gate may.
    approved = await Approvals(uow).latest_states(row.deal_id)
    skip = await gate_flows.flows_not_applicable(uow, model, deal_of(row))  # flows whose trigger it misses
    review = s.review_won(
        model, row.stage_id, criteria.facts_of(model, deal_of(row), evidence, approved, skip)
    )
    recorded = await gating.record(uow, row, review, who.user_id, at)
    if not review.passed:
        return Moved(row, recorded, gating.refusal(review, recorded.review_id))
    before, from_stage = tracked(row), row.stage_id
    deal = deal_of(row)
    won = deal.won
    won.won_time.FromDatetime(at)
    won.close_date.CopyFrom(date_proto(close))
    won.won_amount.CopyFrom(req.won_amount if req.HasField("won_amount") else deal.amount)
    won.contract_number, won.won_by = req.contract_number, who.user_id
    won.cycle_time.FromTimedelta(at - aware(row.created_at))
    row.body = body_of(deal)
    row.status, row.forecast_category, row.probability = WON, "CLOSED", 100
    row.closed_at = at
    row.amount_minor = (
        won.won_amount.amount_minor
    )  # closed won counts the contract value; history keeps the old
    row.expected_close_date = close
    await _save(uow, who, row, before, at)
    evt = events_pb2.DealWon(
        deal=await events.deal_context(uow, row),
        won_amount=won.won_amount,
        close_date=won.close_date,
        contract_number=req.contract_number,
        cycle_time=won.cycle_time,
        from_stage_id=from_stage,
        won_by=who.user_id,
    )
    await uow.emit(events.DEAL_WON, evt, subject=row.deal_id)
    return Moved(row, recorded)


MAX_LOST_DETAIL, MAX_LOST_COMPETITOR = 2000, 200


def _lost_code(model: stage_model_pb2.StageModel, req: pb.MarkLostRequest) -> None:
    if not req.category:
        raise InvalidArgument.field("category", "required: a structured reason, so losses can be counted")
    if req.category not in stage_model_pb2.LostReasonCategory.values():
        raise InvalidArgument.field("category", "one of the LostReasonCategory values")
    if len(req.detail) > MAX_LOST_DETAIL or len(req.competitor) > MAX_LOST_COMPETITOR:
        raise InvalidArgument.field(
            "detail" if len(req.detail) > MAX_LOST_DETAIL else "competitor",
            f"detail at most {MAX_LOST_DETAIL}, competitor at most {MAX_LOST_COMPETITOR} characters",
        )
    if req.category == stage_model_pb2.LOST_REASON_CATEGORY_OTHER and not req.detail.strip():
        raise InvalidArgument.field("detail", "required when the category is OTHER")
    if req.reason_code:
        code = next((c for c in model.lost_reason_codes if c.code == req.reason_code), None)
        if code is None or code.category != req.category:
            raise InvalidArgument.field(
                "reason_code", "a lost reason code of the stage model under this category"
            )


async def mark_lost(uow: UnitOfWork, who: Principal, req: pb.MarkLostRequest, at: datetime) -> DealRow:
    _lost_code(await stage_models.current(uow), req)
    row = await _deal(uow, who, req.deal_id, req.etag, OPEN)
    before = tracked(row)
    deal = deal_of(row)
    lost = deal.lost
    lost.lost_time.FromDatetime(at)
    lost.category, lost.reason_code, lost.detail = req.category, req.reason_code, req.detail
    lost.competitor, lost.lost_at_stage_id, lost.lost_by = req.competitor, row.stage_id, who.user_id
    row.body = body_of(deal)
    row.status, row.forecast_category, row.probability = LOST, "OMITTED", 0
    row.closed_at, row.lost_stage_id = at, lost.lost_at_stage_id
    row.lost_category = enum_name(stage_model_pb2.LostReasonCategory, req.category)
    row.lost_reason_code, row.lost_competitor = req.reason_code, req.competitor.strip()[:200]
    await _save(uow, who, row, before, at)
    evt = events_pb2.DealLost(
        deal=await events.deal_context(uow, row),
        category=req.category,
        reason_code=req.reason_code,
        competitor=req.competitor,
        lost_at_stage_id=lost.lost_at_stage_id,
        lost_by=who.user_id,
    )
    await uow.emit(events.DEAL_LOST, evt, subject=row.deal_id)
    return row


async def reopen_deal(uow: UnitOfWork, who: Principal, req: pb.ReopenDealRequest, at: datetime) -> DealRow:
    if not req.note.strip():
        raise InvalidArgument.field("note", "required: why the deal is alive again")
    bounded_text(req.note, "note")
    if not req.HasField("expected_close_date"):
        raise InvalidArgument.field("expected_close_date", "required")
    _future_date(req.expected_close_date, "expected_close_date", at)
    row = await _deal(uow, who, req.deal_id, req.etag, LOST)
    deal = deal_of(row)
    _, model = await stage_models.domain_model(uow)
    lost_at = model.index(deal.lost.lost_at_stage_id)
    stage_id = req.stage_id or deal.lost.lost_at_stage_id
    target = model.index(stage_id)
    if target is None or (lost_at is not None and target > lost_at):
        raise InvalidArgument.field(
            "stage_id", "the stage it was lost at or an earlier one of the current model"
        )
    stage = model.stages[target]
    before = tracked(row)
    previous = deal.lost.category
    deal.ClearField("lost")
    move = deal.stage_history.add(to_stage_id=stage.stage_id, moved_by=who.user_id, note=req.note)
    move.transition_time.FromDatetime(at)
    deal.expected_close_date.CopyFrom(req.expected_close_date)
    evidence = await Deals(uow).evidence_types(row.deal_id)
    p = s.probability(stage, criteria.facts_of(model, deal, evidence))
    row.body = body_of(deal)
    row.status, row.stage_id, row.stage_model_version = OPEN, stage.stage_id, model.version
    row.closed_at, row.lost_category, row.lost_reason_code, row.lost_competitor, row.lost_stage_id = (
        None,
        "",
        "",
        "",
        "",
    )
    row.probability, row.stage_probability = p.percent, p.base
    default = stage.default_category.removeprefix("FORECAST_CATEGORY_")
    row.forecast_category = default if default in USER_CATEGORIES else "PIPELINE"
    row.expected_close_date = (
        optional_date(req.expected_close_date, "expected_close_date") or row.expected_close_date
    )
    row.stage_entered_at = at
    await discipline.touched(uow, row, who.user_id, at, new_stage=True)
    await _save(uow, who, row, before, at)
    evt = events_pb2.DealReopened(
        deal=await events.deal_context(uow, row), previous_category=previous, reopened_by=who.user_id
    )
    await uow.emit(events.DEAL_REOPENED, evt, subject=row.deal_id)
    return row


async def confirm_deal(uow: UnitOfWork, who: Principal, req: pb.ConfirmDealRequest, at: datetime) -> DealRow:
    """The weekly update: optional corrections, the staleness clock restarts, a frozen deal thaws."""
    row = await _deal(uow, who, req.deal_id, req.etag, OPEN)
    if req.HasField("expected_close_date"):
        _future_date(req.expected_close_date, "expected_close_date", at)
    if req.HasField("amount") and (
        req.amount.currency != row.currency or not 0 <= req.amount.amount_minor <= MAX_AMOUNT_MINOR
    ):
        raise InvalidArgument.field(
            "amount", f"a non-negative amount in {row.currency}, at most {MAX_AMOUNT_MINOR}"
        )
    bounded_text(req.next_step, "next_step")
    bounded_text(req.note, "note")
    category = enum_name(types_pb2.ForecastCategory, req.forecast_category)
    if category and category not in USER_CATEGORIES:
        raise InvalidArgument.field("forecast_category", f"one of {', '.join(USER_CATEGORIES)}")
    before = tracked(row)
    deal = deal_of(row)
    if req.HasField("expected_close_date"):
        deal.expected_close_date.CopyFrom(req.expected_close_date)
        row.expected_close_date = (
            optional_date(req.expected_close_date, "expected_close_date") or row.expected_close_date
        )
    if req.HasField("amount"):
        deal.amount.CopyFrom(req.amount)
        row.amount_minor = req.amount.amount_minor
    if category:
        deal.forecast_category = enum_value(types_pb2.ForecastCategory, category)
        row.forecast_category = category
    if req.next_step:
        deal.next_step = req.next_step
    if req.HasField("next_step_date"):
        deal.next_step_date.CopyFrom(req.next_step_date)
    row.body = body_of(deal)
    await discipline.touched(uow, row, who.user_id, at)  # thaws (DealUnfrozen) and restarts the clock
    await _save(uow, who, row, before, at)
    changed = [c.field for c in history.changes(before, tracked(row))]
    if changed:
        updated = events_pb2.DealUpdated(
            deal=await events.deal_context(uow, row), changed_fields=changed, updated_by=who.user_id
        )
        await uow.emit(events.DEAL_UPDATED, updated, subject=row.deal_id)
    return row


__all__ = ["confirm_deal", "mark_lost", "mark_won", "reopen_deal"]
