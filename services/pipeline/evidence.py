"""What a deal has for its gates: evidence attached and checklist items ticked. Never commit.

Both feed the one gate engine: a change re-prices the deal through its stage's
probability rules (e.g. a legal draft raises contract approval to 90 %; removing
it withdraws the uplift). The deal keeps its stage either way: gates are checked
on entering a stage, not re-checked behind the rep's back.
"""

from __future__ import annotations

from datetime import datetime

from ulid import ULID

from kit.auth import Principal
from kit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from kit.resources import UnitOfWork, sanitize_create
from salesops.pipeline.v1 import deal_pb2, events_pb2
from services.pipeline import criteria, events, stage_models
from services.pipeline.convert import bounded_text
from services.pipeline.documents import body_of, deal_of, tracked
from services.pipeline.domain import history
from services.pipeline.domain import stages as s
from services.pipeline.repositories.deals import OPEN, Deals
from services.pipeline.repositories.evidence import EvidenceItems
from services.pipeline.repositories.history import DealChanges
from services.pipeline.store import DealRow, EvidenceRow


async def _open_deal(uow: UnitOfWork, who: Principal, deal_id: str) -> DealRow:
    row = await Deals(uow).visible(who, deal_id, for_update=True)
    if row.status != OPEN:
        raise FailedPrecondition(
            "only open deals gather evidence and checklist ticks", reason="DEAL_NOT_OPEN"
        )
    return row


async def _save(
    uow: UnitOfWork, who: Principal, row: DealRow, deal: deal_pb2.Deal, what: str, etag: str, at: datetime
) -> DealRow:
    """Store `deal`'s body, re-price it by its stage's rules, record and announce the change."""
    repo = Deals(uow)
    before = tracked(row)
    evidence = await repo.evidence_types(row.deal_id)
    deal.ClearField("evidence_type_ids")
    deal.evidence_type_ids.extend(sorted(evidence))
    _, model = await stage_models.domain_model(uow)
    stage = model.stage(row.stage_id)
    if stage is not None:
        p = s.probability(stage, criteria.facts_of(model, deal, evidence))
        row.probability, row.stage_probability = p.percent, p.base
        row.weighted_minor = s.weighted(row.amount_minor, row.probability)
    row.body = body_of(deal)
    row.updated_at, row.updated_by = at, who.user_id
    await repo.update_if_etag(row, etag)
    await DealChanges(uow).append(row.deal_id, history.changes(before, tracked(row)), who.user_id, at)
    updated = events_pb2.DealUpdated(
        deal=await events.deal_context(uow, row), changed_fields=[what], updated_by=who.user_id
    )
    await uow.emit(events.DEAL_UPDATED, updated, subject=row.deal_id)
    return row


MAX_EVIDENCE_BYTES = 16 * 1024


async def add_evidence(
    uow: UnitOfWork, who: Principal, deal_id: str, incoming: deal_pb2.DealEvidence, at: datetime
) -> tuple[EvidenceRow, DealRow]:
    ev = sanitize_create(incoming)
    model = await stage_models.current(uow)
    known = {e.evidence_type_id for e in model.evidence_types}
    if ev.evidence_type_id not in known:
        raise InvalidArgument.field(
            "evidence.evidence_type_id", f"one of the stage model's types: {', '.join(sorted(known))}"
        )
    if not ev.attachment.uri:
        raise InvalidArgument.field("evidence.attachment.uri", "required: upload the file first")
    if len(ev.evidence_id) > 64:  # the column's width
        raise InvalidArgument.field("evidence.evidence_id", "at most 64 characters")
    if ev.ByteSize() > MAX_EVIDENCE_BYTES:
        raise InvalidArgument.field(
            "evidence", f"at most {MAX_EVIDENCE_BYTES // 1024} KB: a reference, not the file"
        )
    row = await _open_deal(uow, who, deal_id)
    items = EvidenceItems(uow)
    evidence_id = ev.evidence_id or str(ULID())
    if ev.evidence_id and (found := await items.find(evidence_id)) is not None:
        same = (
            found.deal_id == deal_id
            and deal_pb2.DealEvidence.FromString(found.body).attachment == ev.attachment
        )
        if not same or found.evidence_type_id != ev.evidence_type_id:
            raise AlreadyExists(items.resource, evidence_id, "other evidence already has this evidence_id")
        return found, row  # a replayed upload
    ev.evidence_id, ev.deal_id, ev.stage_id = evidence_id, deal_id, row.stage_id
    ev.audit.created_by = ev.audit.updated_by = who.user_id
    ev.audit.create_time.FromDatetime(at)
    ev.audit.update_time.FromDatetime(at)
    stored = EvidenceRow(
        evidence_id=evidence_id,
        deal_id=deal_id,
        evidence_type_id=ev.evidence_type_id,
        stage_id=row.stage_id,
        created_at=at,
        created_by=who.user_id,
        body=ev.SerializeToString(deterministic=True),
    )
    await items.add(stored)
    return stored, await _save(uow, who, row, deal_of(row), "evidence_type_ids", "", at)


async def remove_evidence(
    uow: UnitOfWork, who: Principal, deal_id: str, evidence_id: str, at: datetime
) -> DealRow:
    row = await _open_deal(uow, who, deal_id)
    items = EvidenceItems(uow)
    found = await items.find(evidence_id)
    if found is None or found.deal_id != deal_id:
        raise NotFound(items.resource, evidence_id)
    await items.remove(found)
    return await _save(uow, who, row, deal_of(row), "evidence_type_ids", "", at)


async def set_checklist_item(
    uow: UnitOfWork,
    who: Principal,
    deal_id: str,
    item_id: str,
    checked: bool,
    note: str,
    etag: str,
    at: datetime,
) -> DealRow:
    model = await stage_models.current(uow)
    known = {c.item_id for c in model.checklist_items}
    if item_id not in known:
        raise InvalidArgument.field(
            "item_id", f"one of the stage model's checklist items: {', '.join(sorted(known))}"
        )
    bounded_text(note, "note")
    row = await _open_deal(uow, who, deal_id)
    Deals(uow).check_etag(row, etag)
    deal = deal_of(row)
    item = next((c for c in deal.checklist if c.item_id == item_id), None) or deal.checklist.add(
        item_id=item_id
    )
    item.checked, item.note, item.updated_by = checked, note, who.user_id
    item.update_time.FromDatetime(at)
    return await _save(uow, who, row, deal, "checklist", etag, at)
