"""Intake: validate and normalise, dedupe (merge or flag), grade, then route or pool. Nothing is dropped."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.protobuf import json_format
from ulid import ULID

from kit.auth import Principal
from kit.errors import InvalidArgument, Violations
from kit.resources import UnitOfWork, sanitize_create
from salesops.leads.v1 import enums_pb2, events_pb2, lead_pb2
from services.leads import assignment, events, ownership, policies, validation
from services.leads.convert import aware, enum_name, enum_value, to_dict, ts
from services.leads.domain import dedupe, grading, normalize, status
from services.leads.domain import pool as pool_rules
from services.leads.policies import TenantPolicies
from services.leads.repositories.followups import BehaviorRepository
from services.leads.repositories.intakes import IntakeRepository, add_row, new_row, pending_adder
from services.leads.repositories.leads import LeadRepository
from services.leads.store import DuplicateRow, IntakeRow, LeadRow

# What became of an intake (IntakeOutcome without its prefix).
CREATED, CREATED_FLAGGED, MERGED = "CREATED", "CREATED_FLAGGED", "MERGED"


@dataclass(frozen=True)
class Stored:
    """The messages a lead created in this unit of work was stored from (its body and grading
    columns): its answer is presented from them instead of parsing the JSON just written."""

    lead: lead_pb2.Lead
    grading: lead_pb2.GradingResult


@dataclass
class IntakeResult:
    row: LeadRow
    outcome: str  # CREATED, CREATED_FLAGGED or MERGED
    intake_id: str
    replayed: bool = False
    candidates: list[dedupe.Match] = field(default_factory=list)
    stored: Stored | None = None  # set for a lead created by this intake


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else k, v, out)
    else:
        out[prefix] = value


def grading_facts(
    lead: lead_pb2.Lead, behaviors: list[grading.Behavior], data: dict[str, Any] | None = None
) -> grading.LeadFacts:
    """`data`: to_dict(lead) when the caller has it (new_lead stores it as the body: one conversion)."""
    data = to_dict(lead) if data is None else data
    fields: dict[str, Any] = {}
    for key in ("contact", "company", "attributes"):
        _flatten(key, data.get(key, {}), fields)
    for key in ("region", "language_code", "description", "product_lines", "tags", "display_name"):
        if key in data:
            fields[key] = data[key]
    budget = lead.stated_budget if lead.HasField("stated_budget") else None
    if budget is not None:
        fields["stated_budget"] = budget.amount_minor / 100
    return grading.LeadFacts(
        fields=fields,
        channel=enum_name(enums_pb2.LeadChannel, lead.source.channel),
        source_code=lead.source.source_code,
        budget_currency=budget.currency if budget is not None else "",
        budget_units=budget.amount_minor / 100 if budget is not None else None,
        behaviors=behaviors,
    )


def grading_json(result: grading.Result, trigger: str, at: datetime) -> dict[str, Any]:
    return to_dict(grading_msg(result, trigger, at))


def grading_msg(result: grading.Result, trigger: str, at: datetime) -> lead_pb2.GradingResult:
    msg = lead_pb2.GradingResult(
        score=result.score,
        grade=enum_value(enums_pb2.LeadGrade, result.grade),
        rules_version=result.version,
        trigger=enum_value(lead_pb2.GradingTrigger, trigger),
    )
    msg.grade_time.CopyFrom(ts(at))
    for f in result.fired:
        msg.fired_rules.add(
            rule_id=f.rule_id, display_name=f.display_name, points=f.points, explanation=f.explanation
        )
    return msg


async def behaviors_of(uow: UnitOfWork, lead_id: str) -> list[grading.Behavior]:
    rows = await BehaviorRepository(uow).of_lead(lead_id)
    return [grading.Behavior(t, aware(o)) for t, o in rows]  # type: ignore[arg-type]


# The columns' widths (store.py): a longer value is INVALID_ARGUMENT, not a database error.
MAX_CHARS = {"contact.email": 254, "region": 128, "source.source_code": 64, "language_code": 16}


def _check_sizes(lead: lead_pb2.Lead, v: Violations, prefix: str) -> None:
    if lead.ByteSize() > validation.MAX_MESSAGE_BYTES:
        v.add(prefix, f"at most {validation.MAX_MESSAGE_BYTES // 1024} KB")
    for path, limit in MAX_CHARS.items():
        holder, _, name = path.rpartition(".")
        value = getattr(getattr(lead, holder) if holder else lead, name)
        if len(value) > limit:
            v.add(f"{prefix}.{path}", f"at most {limit} characters")
    if lead.source.channel and not validation.known_enum(enums_pb2.LeadChannel, lead.source.channel):
        v.add(f"{prefix}.source.channel", "one of the LeadChannel values")


def validate(lead: lead_pb2.Lead, policy: Any, prefix: str = "lead") -> lead_pb2.Lead:
    """Normalise contact keys and check required fields; every problem is reported at once."""
    v = Violations()
    out = lead_pb2.Lead()
    out.CopyFrom(lead)
    if lead.lead_id and not validation.ID.match(lead.lead_id):
        v.add(f"{prefix}.lead_id", "1-64 letters, digits, '-' or '_'")
    if not lead.source.channel:
        v.add(f"{prefix}.source.channel", "required")
    try:
        out.contact.phone = normalize.normalize_phone(
            lead.contact.phone, policy.default_phone_region or "CN", f"{prefix}.contact.phone"
        )
    except InvalidArgument as exc:
        v.items.extend(exc.violations)
    try:
        out.contact.email = normalize.normalize_email(lead.contact.email, f"{prefix}.contact.email")
    except InvalidArgument as exc:
        v.items.extend(exc.violations)
    if not lead.contact.phone.strip() and not lead.contact.email.strip():
        v.add(f"{prefix}.contact", "a phone or an e-mail is required")
    if policy.required_fields:  # the lead as a dict only when the policy asks for fields
        flat: dict[str, Any] = {}
        _flatten("", to_dict(lead), flat)
        for path in policy.required_fields:
            if not any(k == path or k.startswith(path + ".") for k in flat):
                v.add(f"{prefix}.{path}", "required by the tenant's intake policy")
    if lead.HasField("stated_budget") and lead.stated_budget.amount_minor < 0:
        v.add(f"{prefix}.stated_budget", "must not be negative")
    _check_sizes(lead, v, prefix)
    v.raise_if_any("invalid lead")
    if lead.HasField("company"):
        out.company.normalized_name = normalize.normalize_company(lead.company.name)
    if not out.display_name:
        out.display_name = out.company.name or out.contact.name or out.contact.email or out.contact.phone
    if not out.language_code:
        out.language_code = "zh-CN"
    return out


async def _replay(uow: UnitOfWork, intake_id: str) -> IntakeResult | None:
    intake = await IntakeRepository(uow).find(intake_id)
    if intake is None:
        return None
    row = await LeadRepository(uow).get(intake.lead_id)
    return IntakeResult(row, intake.outcome, intake_id, replayed=True)


def company_key(company_norm: str) -> str:
    return company_norm[:2]


# Names read on each side of a new company name in its block by a single intake.
NEIGHBOURS = 64


async def _similar(uow: UnitOfWork, company_norm: str, threshold: float) -> list[dedupe.Match]:
    if not company_norm or threshold <= 0:
        return []
    # Blocking on the first two characters keeps the fuzzy scan small at millions of leads; the
    # names sorting nearest to this one in its block (an indexed range scan on each side, whatever
    # the block's size) are where near-identical names end up. ImportLeads reads its own batch.
    near = await LeadRepository(uow).names_near(company_key(company_norm), company_norm, NEIGHBOURS)
    return dedupe.similar_companies(company_norm, near, threshold)


@dataclass(frozen=True)
class Prepared:
    """What an intake read before its write transaction: the fuzzy company matches (for the name
    and threshold used), the tenant's policy versions, and whether its intake id was already used."""

    company_norm: str
    threshold: float
    similar: list[dedupe.Match]
    versions: dict[str, int] | None = None
    intake_id: str = ""  # checked: no intake with this id had been recorded


async def prepare(uow: UnitOfWork, raw: lead_pb2.Lead) -> Prepared:
    """An intake's reads that need not be in its write, done in a read-only unit of work.

    Where writers take turns (SQLite) this runs beside the writer instead of inside the turn:
    the fuzzy-match block (`create` uses it only if the name and threshold it would use are the
    same), the policy versions and the replay check of a client-made id (a later race on that id
    is a unique-key violation, and the re-run passes no `prepared`). Invalid input is left for
    `create` to report."""
    policy = await policies.load(uow, policies.INTAKE)
    versions = policies.versions_seen(uow)
    unused = raw.lead_id if raw.lead_id and await IntakeRepository(uow).find(raw.lead_id) is None else ""
    company_norm = normalize.normalize_company(raw.company.name) if raw.HasField("company") else ""
    threshold = policy.company_similarity_threshold or 0.0
    similar = await _similar(uow, company_norm, threshold)
    return Prepared(company_norm, threshold, similar, versions, unused)


def existing_lead(r: LeadRow) -> dedupe.ExistingLead:
    """A stored lead as the dedupe rules see it."""
    return dedupe.ExistingLead(
        r.lead_id, r.phone, r.email, r.company_norm, r.status in status.WON_OR_LOST, r.display_name
    )


def exact_action(intake_policy: Any) -> str:
    """What the tenant's intake policy does with an exact phone / e-mail match."""
    return dedupe.FLAG if intake_policy.exact_match_action == 2 else dedupe.MERGE


def stamp_source(lead: lead_pb2.Lead, who: Principal, import_id: str) -> None:
    """The source fields the server sets: the import, the partner system or the capturing user."""
    if import_id:
        lead.source.import_id = import_id
    if who.is_service and lead.source.channel == enums_pb2.LEAD_CHANNEL_PARTNER_API:
        lead.source.partner_id = who.user_id
    elif not who.is_service:
        lead.source.captured_by_user_id = who.user_id


def new_lead(
    uow: UnitOfWork,
    who: Principal,
    lead: lead_pb2.Lead,
    lead_id: str,
    intake_id: str,
    result: grading.Result,
    candidates: tuple[dedupe.Match, ...],
    at: datetime,
    data: dict[str, Any] | None = None,
) -> tuple[LeadRow, str, Stored]:
    """A new lead (graded, in no pool yet) with its intake and duplicate candidates, added to the
    session; its outcome (CREATED or CREATED_FLAGGED) and the messages it was stored from.
    `data`: to_dict(lead) as graded (grading_facts'), taken as the body instead of converting the
    lead again (a tenth of a lead's own intake CPU); only the completeness set here differs."""
    lead.form_completeness_percent = result.completeness
    if data is None:
        body = to_dict(lead)
    else:
        body = data
        if result.completeness:  # to_dict leaves a zero out
            body["form_completeness_percent"] = result.completeness
        else:
            body.pop("form_completeness_percent", None)
    graded = grading_msg(result, "INTAKE", at)
    row = new_row(
        LeadRow,
        lead_id=lead_id,
        status=status.IN_POOL,
        display_name=lead.display_name[:300],
        phone=lead.contact.phone,
        email=lead.contact.email,
        company_norm=lead.company.normalized_name[:200],
        company_key=company_key(lead.company.normalized_name),
        region=lead.region,
        language=lead.language_code,
        channel=enum_name(enums_pb2.LeadChannel, lead.source.channel),
        source_code=lead.source.source_code,
        grade=result.grade,
        score=result.score,
        grading=to_dict(graded),
        sla_state="NOT_APPLICABLE",
        duplicate_review_needed=bool(candidates),
        intake_count=1,
        body=body,
        version=1,
        created_by=who.user_id,
        created_at=at,
        updated_at=at,
    )
    for key in ("lead_id",):
        row.body.pop(key, None)
    pending_adder(uow)(row)
    outcome = CREATED_FLAGGED if candidates else CREATED
    add_row(uow, IntakeRow, intake_id=intake_id, lead_id=lead_id, outcome=outcome, receive_time=at, body={})
    for m in candidates:
        add_row(
            uow,
            DuplicateRow,
            lead_id=lead_id,
            other_lead_id=m.lead_id,
            kind=m.kind,
            score=m.score,
            display_name=m.display_name,
            detect_time=at,
        )
    return row, outcome, Stored(lead, graded)


async def announce_created(
    uow: UnitOfWork,
    who: Principal,
    row: LeadRow,
    lead: lead_pb2.Lead,
    result: grading.Result,
    candidates: tuple[dedupe.Match, ...],
    import_id: str,
) -> None:
    """LeadCreated, and LeadDuplicateFlagged when it has candidates (before routing: no owner yet)."""
    await events.publish(
        uow,
        events_pb2.LeadCreated(
            lead=events.context(row),
            channel=lead.source.channel,
            source_code=lead.source.source_code,
            campaign_id=lead.source.campaign_id,
            product_lines=list(lead.product_lines),
            score=result.score,
            duplicate_flagged=bool(candidates),
            created_by=who.user_id,
            import_id=import_id,
        ),
        row.lead_id,
    )
    if candidates:
        flagged = events_pb2.LeadDuplicateFlagged(lead=events.context(row))
        for m in candidates:
            flagged.candidates.add(
                lead_id=m.lead_id,
                match_kind=enum_value(enums_pb2.DuplicateMatchKind, m.kind),
                score=m.score,
                display_name=m.display_name,
                state=lead_pb2.DUPLICATE_CANDIDATE_STATE_OPEN,
            )
        await events.publish(uow, flagged, row.lead_id)


async def create(
    uow: UnitOfWork,
    who: Principal,
    raw: lead_pb2.Lead,
    at: datetime,
    *,
    assign_to_creator: bool = False,
    import_id: str = "",
    intake_id: str = "",
    skip_routing: bool = False,
    prefix: str = "lead",
    prepared: Prepared | None = None,
) -> IntakeResult:
    # An id made here is new: only a client-made one (or an import's) can be a replay.
    given = intake_id or raw.lead_id
    intake_id = given or str(ULID())
    if prepared is not None and prepared.versions is not None:
        policies.assume_versions(uow, prepared.versions)
    checked = prepared is not None and given and prepared.intake_id == given
    replay = await _replay(uow, intake_id) if given and not checked else None
    if replay is not None:
        return replay
    # Its events (created, flagged, assigned or merged) reach the outbox in one statement.
    async with uow.gathered_events():
        return await _fresh(
            uow, who, raw, at, intake_id, assign_to_creator, import_id, skip_routing, prefix, prepared
        )


async def _fresh(
    uow: UnitOfWork,
    who: Principal,
    raw: lead_pb2.Lead,
    at: datetime,
    intake_id: str,
    assign_to_creator: bool,
    import_id: str,
    skip_routing: bool,
    prefix: str,
    prepared: Prepared | None,
) -> IntakeResult:
    """An intake that is not a replay: dedupe, then a merge or a new lead (graded, routed or pooled)."""
    intake_policy = await policies.load(uow, policies.INTAKE)
    # Output-only fields (grading, partner, import, next step...) are the server's to set, never the caller's.
    lead = validate(sanitize_create(raw), intake_policy, prefix)
    stamp_source(lead, who, import_id)
    phone, email = lead.contact.phone, lead.contact.email
    existing = await LeadRepository(uow).by_contact(phone, email)
    company_norm, threshold = lead.company.normalized_name, intake_policy.company_similarity_threshold or 0.0
    if prepared is not None and (prepared.company_norm, prepared.threshold) == (company_norm, threshold):
        similar = prepared.similar
    else:
        similar = await _similar(uow, company_norm, threshold)
    decision = dedupe.decide(
        phone, email, [existing_lead(r) for r in existing], similar, exact_action(intake_policy)
    )
    if decision.action == dedupe.MERGE:
        return await _merge(uow, lead, decision, intake_id, at)
    lead_id = raw.lead_id or intake_id
    data = to_dict(lead)
    result = grading.grade(grading_facts(lead, [], data), await policies.grading_rules(uow), at)
    row, outcome, stored = new_lead(uow, who, lead, lead_id, intake_id, result, decision.candidates, at, data)
    # No flush here: routing below completes the row, so it is inserted once, with its owner or pool.
    await announce_created(uow, who, row, lead, result, decision.candidates, import_id)
    tenant = await TenantPolicies.load(uow)
    region_pool = pool_rules.pool_for_region(tenant.pools, row.region)
    row.pool_id, row.pool_entry_reason = region_pool.pool_id, "NEW_LEAD"
    if assign_to_creator and who.has_role("rep", "supervisor"):
        await assignment.claim(uow, who, lead_id, at)
    elif not skip_routing:
        await ownership.route(uow, row, tenant, at=at)
    return IntakeResult(row, outcome, intake_id, candidates=list(decision.candidates), stored=stored)


async def _merge(
    uow: UnitOfWork, lead: lead_pb2.Lead, decision: dedupe.DedupeDecision, intake_id: str, at: datetime
) -> IntakeResult:
    target = await LeadRepository(uow).get(decision.merge_into)
    return await merge_into(uow, target, lead, decision, intake_id, at)


async def merge_into(
    uow: UnitOfWork,
    target: LeadRow,
    lead: lead_pb2.Lead,
    decision: dedupe.DedupeDecision,
    intake_id: str,
    at: datetime,
) -> IntakeResult:
    """The intake recorded on `target` (the lead the decision merges into), which counts it."""
    record = lead_pb2.IntakeRecord(
        intake_id=intake_id,
        source=lead.source,
        match_kinds=[enum_value(enums_pb2.DuplicateMatchKind, k) for k in decision.match_kinds],
        contact=lead.contact,
        company_name=lead.company.name,
        description=lead.description,
    )
    record.receive_time.CopyFrom(ts(at))
    if lead.HasField("attributes"):
        record.attributes.CopyFrom(lead.attributes)
    add_row(
        uow,
        IntakeRow,
        intake_id=intake_id,
        lead_id=target.lead_id,
        outcome=MERGED,
        receive_time=at,
        body=to_dict(record),
    )
    target.intake_count += 1
    target.version += 1
    target.updated_at = at
    await events.publish(
        uow,
        events_pb2.LeadMerged(
            lead=events.context(target),
            intake_id=intake_id,
            match_kinds=record.match_kinds,
            channel=lead.source.channel,
            automatic=True,
        ),
        target.lead_id,
    )
    return IntakeResult(target, MERGED, intake_id)


async def recent_intakes(uow: UnitOfWork, lead_id: str) -> list[lead_pb2.IntakeRecord]:
    out = []
    for r in await IntakeRepository(uow).merged_into(lead_id):
        rec = lead_pb2.IntakeRecord()
        json_format.ParseDict(r.body, rec, ignore_unknown_fields=True)
        out.append(rec)
    return out
