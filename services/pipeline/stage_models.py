"""The tenant's stage model: one versioned settings document (kit's store keeps every version).

Until an admin saves one, a tenant runs on `DEFAULT` (version 0): six stages from
initial contact to contract approval, the moment-of-truth gate before Proposal /
Quote, signed contract to win. Saving makes version 1, 2, ...; deals record the
version they were last evaluated against, and old versions stay readable.
"""

from __future__ import annotations

import weakref
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask

from kit.errors import FailedPrecondition, InvalidArgument, NotFound
from kit.errors import FieldViolation as FV
from kit.errors import PreconditionViolation as PV
from kit.resources import Stored, TenantSettings, UnitOfWork, merge_update
from salesops.pipeline.v1 import stage_model_pb2 as sm
from salesops.pipeline.v1 import types_pb2
from services.pipeline import criteria
from services.pipeline.domain import stages as s
from services.pipeline.store import settings

RESOURCE = "pipeline.StageModel"


def _default() -> sm.StageModel:
    m = sm.StageModel()
    for eid, name in [
        ("meeting_minutes", "Meeting minutes"),
        ("signed_requirement_confirmation", "Signed requirement confirmation"),
        ("quote", "Quote"),
        ("legal_draft", "Legal draft"),
        ("signed_contract", "Signed contract"),
    ]:
        m.evidence_types.add(evidence_type_id=eid, display_name=name)
    m.checklist_items.add(item_id="requirements_reviewed", text="Requirements reviewed with the customer")
    m.checklist_items.add(item_id="terms_agreed", text="Commercial terms agreed")

    m.stages.add(stage_id="initial_contact", display_name="Initial contact", win_probability_percent=10)
    needs = m.stages.add(
        stage_id="needs_confirmed", display_name="Needs confirmed", win_probability_percent=30
    )
    needs.entry_criteria.required_evidence_type_ids.append("meeting_minutes")
    solution = m.stages.add(
        stage_id="solution_confirmed", display_name="Solution confirmed", win_probability_percent=70
    )
    # Signed confirmation, or minutes plus a reviewed checklist: an OR the flat lists cannot say.
    rule = solution.entry_criteria.rule
    rule.display_name = "Requirement confirmed"
    rule.any_of.criteria.add(evidence_type_id="signed_requirement_confirmation")
    both = rule.any_of.criteria.add(display_name="Minutes and review")
    both.all_of.criteria.add(evidence_type_id="meeting_minutes")
    both.all_of.criteria.add(checklist_item_id="requirements_reviewed")
    proposal = m.stages.add(
        stage_id="proposal_quote",
        display_name="Proposal / quote",
        win_probability_percent=75,
        default_forecast_category=types_pb2.FORECAST_CATEGORY_BEST_CASE,
    )
    # The moment of truth: budget range AND decision date AND access to the decision maker.
    ec = proposal.entry_criteria
    ec.required_fields.add(field_path="qualification.budget_min", display_name="Budget range (from)")
    ec.required_fields.add(field_path="qualification.budget_max", display_name="Budget range (to)")
    ec.required_fields.add(field_path="qualification.decision_date", display_name="Decision date")
    ec.required_fields.add(
        field_path="qualification.decision_maker_access",
        display_name="Access to the decision maker",
        allowed_values=["DECISION_MAKER_ACCESS_MET", "DECISION_MAKER_ACCESS_SPONSOR"],
    )
    negotiation = m.stages.add(stage_id="negotiation", display_name="Negotiation", win_probability_percent=80)
    negotiation.entry_criteria.required_evidence_type_ids.append("quote")
    contract = m.stages.add(
        stage_id="contract_approval",
        display_name="Contract approval",
        win_probability_percent=85,
        default_forecast_category=types_pb2.FORECAST_CATEGORY_COMMIT,
    )
    contract.entry_criteria.required_checklist_item_ids.append("terms_agreed")
    legal = contract.probability_rules.add(
        rule_id="legal_draft", display_name="Legal draft uploaded", probability_percent=90
    )
    legal.condition.required_evidence_type_ids.append("legal_draft")
    m.won_criteria.required_evidence_type_ids.append("signed_contract")
    # Dwell: how long a deal may sit in a stage before its supervisor hears of it (a team's own p90
    # wins where tighter). A quote awaiting the customer's feedback for over a week is the classic.
    days, working = types_pb2.TIME_UNIT_CALENDAR_DAYS, types_pb2.TIME_UNIT_WORKING_DAYS
    for stage, (value, unit) in zip(
        m.stages, ((14, days), (21, days), (21, days), (7, days), (14, days), (10, working)), strict=True
    ):
        stage.dwell_limit.value, stage.dwell_limit.unit = value, unit
    return m


DEFAULT = _default()
STORE = TenantSettings(sm.StageModel, DEFAULT, tables=settings)


def _with_version(stored: Stored[sm.StageModel]) -> sm.StageModel:
    value = sm.StageModel()
    value.CopyFrom(stored.value)
    value.version = stored.version
    value.etag = stored.etag
    if stored.updated_at is not None:
        value.audit.update_time.FromDatetime(stored.updated_at)
        value.audit.updated_by = stored.updated_by
    return value


async def current(uow: UnitOfWork) -> sm.StageModel:
    """The tenant's current model with its version, etag and audit filled in."""
    return _with_version(await STORE.load(uow))


async def version(uow: UnitOfWork, number: int) -> sm.StageModel:
    """A given version (0 = current); NOT_FOUND for a version never written."""
    stored = await STORE.load(uow)
    if number in (0, stored.version):
        return _with_version(stored)
    for old in await STORE.history(uow, limit=max(stored.version, 1)):
        if old.version == number:
            return _with_version(old)
    raise NotFound(RESOURCE, str(number))


async def versions(uow: UnitOfWork, *, below: int | None, limit: int) -> list[sm.StageModel]:
    """Versions newest first, those under `below` when given (the built-in default while none was saved)."""
    stored = await STORE.load(uow)
    if stored.version == 0:
        return [] if below is not None else [_with_version(stored)]
    saved = await STORE.history(uow, limit=stored.version)  # every version: a model changes rarely
    return [_with_version(v) for v in saved if below is None or v.version < below][:limit]


# Tenant -> (the current model's serialized form, its engine model): building the engine's model
# (`criteria.model_of`) was the largest share of a CreateDeal's CPU, every write path parses it,
# and a model changes rarely. Keyed by the whole serialized document (version, etag and audit
# included), so a hit is the same model whatever unit of work read it, committed or not.
_BY_CONTENT: dict[str, tuple[bytes, s.StageModel]] = {}


async def domain_model(uow: UnitOfWork) -> tuple[sm.StageModel, s.StageModel]:
    model = await current(uow)
    key = model.SerializeToString(deterministic=True)
    hit = _BY_CONTENT.get(uow.tenant)
    if hit is not None and hit[0] == key:
        return model, hit[1]
    parsed = criteria.model_of(model)
    if len(_BY_CONTENT) >= _PARSED_MAX:
        _BY_CONTENT.clear()
    _BY_CONTENT[uow.tenant] = (key, parsed)
    return model, parsed


# Per database (its pool), tenant -> (version, engine model): a version is written once and never
# changes, so a reader that already knows the current version (CheckGate reads it beside the deal)
# skips reading and converting the document. Filled from read-only units of work only (what they
# read is committed); bounded by starting over.
_PARSED: weakref.WeakKeyDictionary[Any, dict[str, tuple[int, s.StageModel]]] = weakref.WeakKeyDictionary()
_PARSED_MAX = 2000


async def engine_model_at(uow: UnitOfWork, version: int) -> s.StageModel:
    """The engine's model of the tenant's current `version` (as just read in this read-only unit of work)."""
    pool = uow.session.get_bind().engine.pool
    shared = _PARSED.get(pool)
    if shared is None:
        shared = _PARSED[pool] = {}
    hit = shared.get(uow.tenant)
    if hit is not None and hit[0] == version:
        return hit[1]
    model = await current(uow)
    parsed = criteria.model_of(model)
    if model.version == version:
        if len(shared) >= _PARSED_MAX:
            shared.clear()
        shared[uow.tenant] = (version, parsed)
    return parsed


def check(model: sm.StageModel) -> None:
    problems = criteria.problems_of(model)
    if problems:
        raise InvalidArgument(
            "the stage model is not valid",
            [FV(f"stage_model.{p.path}", p.description) for p in problems],
        )


async def update(
    uow: UnitOfWork,
    incoming: sm.StageModel,
    mask: FieldMask,
    actor: str,
    open_stage_counts: dict[str, int],
    stage_mapping: dict[str, str],
    *,
    save: bool = True,
) -> sm.StageModel:
    """The merged, checked model stored as the next version (compare-and-set on the etag).

    Removed stages holding open deals need a mapping to a stage of the new model
    (FAILED_PRECONDITION naming them otherwise); moving those deals is the caller's.
    """
    stored = await current(uow)
    merged = merge_update(stored, incoming, mask)
    check(merged)
    kept = {st.stage_id for st in merged.stages}
    unmapped = [
        stage
        for stage, n in sorted(open_stage_counts.items())
        if n and stage not in kept and stage_mapping.get(stage) not in kept
    ]
    if unmapped:
        raise FailedPrecondition(
            "removed stages hold open deals; map them to stages of the new model in stage_mapping",
            [PV("STAGE_MAPPING", stage, f"{open_stage_counts[stage]} open deal(s)") for stage in unmapped],
            reason="STAGE_MAPPING_REQUIRED",
        )
    merged.ClearField("version")
    merged.ClearField("audit")
    if not save:
        return merged
    saved = await STORE.put(uow, merged, incoming.etag, actor)
    return await version(uow, int(saved.etag))


__all__ = [
    "DEFAULT",
    "RESOURCE",
    "STORE",
    "check",
    "current",
    "domain_model",
    "update",
    "version",
    "versions",
]
