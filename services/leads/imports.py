"""ImportLeads as a batch: the same intake as CreateLead row by row (same replays, grades, duplicate
verdicts and routing), with the database asked once per batch instead of about ten times per row.

The batch reads what its rows need up front (their intake keys, the leads sharing their phones or
e-mails, the names nearest theirs in their fuzzy-match blocks, the policies), decides row after row
in memory (each row sees the leads the rows before it created or merged into, as it would had they
been committed one by one), then inserts the rows and the outbox events in bulk in the caller's
transaction.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kit.auth import Principal
from kit.errors import Aborted, NotFound, SalesopsError
from kit.resources import UnitOfWork, sanitize_create
from salesops.leads.v1 import lead_pb2
from services.leads import intake, policies
from services.leads.batch_routing import Roster, route_new
from services.leads.convert import aware, to_dict
from services.leads.domain import dedupe, grading
from services.leads.domain import pool as pool_rules
from services.leads.policies import TenantPolicies
from services.leads.repositories.imports import ImportRepository
from services.leads.repositories.intakes import batch_inserts
from services.leads.store import IntakeRow, LeadRow

Outcome = intake.IntakeResult | SalesopsError
Name = tuple[str, str, str]  # a lead's id, normalised company and display name (fuzzy matching)


@dataclass
class ImportRows:
    """One batch of an import: the rows, the import's id and where the batch starts in the request."""

    leads: list[lead_pb2.Lead]
    import_id: str
    start: int = 0
    skip_routing: bool = False

    def intake_id(self, i: int) -> str:
        """The row's idempotency key, as a row-by-row import names it."""
        return self.leads[i].lead_id or f"{self.import_id}-{self.start + i}"


@dataclass
class _Known:
    """What the batch knows of the tenant's leads: read up front, then grown by its own rows."""

    by_phone: dict[str, list[LeadRow]] = field(default_factory=lambda: defaultdict(list))
    by_email: dict[str, list[LeadRow]] = field(default_factory=lambda: defaultdict(list))
    near: dict[str, tuple[list[Name], list[Name]]] = field(default_factory=dict)  # read, by name
    created_in: dict[str, list[Name]] = field(default_factory=lambda: defaultdict(list))  # by block
    taken: set[str] = field(default_factory=set)  # lead ids in use
    intakes: dict[str, intake.IntakeResult] = field(default_factory=dict)  # this batch's, by intake id

    def add(self, row: LeadRow) -> None:
        if row.phone:
            self.by_phone[row.phone].append(row)
        if row.email:
            self.by_email[row.email].append(row)
        self.taken.add(row.lead_id)

    def created(self, row: LeadRow) -> None:
        self.add(row)
        if row.company_norm:
            self.created_in[row.company_key].append((row.lead_id, row.company_norm, row.display_name))

    def names_near(self, name: str) -> list[Name]:
        """intake's sorted neighbourhood of `name` (NEIGHBOURS on each side in its block, the ones at
        or after it first), over the names read and those this batch created."""
        up, down = self.near.get(name, ([], []))
        mine = self.created_in.get(intake.company_key(name), [])
        after = sorted([*up, *(n for n in mine if n[1] >= name)], key=lambda n: n[1])
        before = sorted([*down, *(n for n in mine if n[1] < name)], key=lambda n: n[1], reverse=True)
        return after[: intake.NEIGHBOURS] + before[: intake.NEIGHBOURS]

    def by_contact(self, phone: str, email: str) -> list[LeadRow]:
        """LeadRepository.by_contact over what is known: oldest first."""
        found = {r.lead_id: r for r in (*self.by_phone.get(phone, ()), *self.by_email.get(email, ()))}
        return sorted(found.values(), key=lambda r: (aware(r.created_at), r.lead_id))


@dataclass(frozen=True)
class Row:
    """One intake of a batch: the lead as sent, its idempotency key, who sent it, when it arrived,
    and where its validation errors point (`lead` for CreateLead, `rows[i].lead` for an import)."""

    raw: lead_pb2.Lead
    intake_id: str
    who: Principal
    at: datetime
    prefix: str = "lead"


async def import_rows(uow: UnitOfWork, who: Principal, batch: ImportRows, at: datetime) -> list[Outcome]:
    """Every row's outcome, in order: created (flagged or not), merged, replayed, or its error.
    A rejected row writes nothing; the others are written in bulk in this unit of work."""
    # A microsecond apart, in row order: the batch ages like rows created one by one (the oldest
    # exact match, the longest idle rep), not as one instant.
    rows = [
        Row(raw, batch.intake_id(i), who, at + timedelta(microseconds=batch.start + i),
            f"rows[{batch.start + i}].lead")
        for i, raw in enumerate(batch.leads)
    ]  # fmt: skip
    return await intake_rows(uow, rows, import_id=batch.import_id, skip_routing=batch.skip_routing)


async def intake_rows(
    uow: UnitOfWork, batch: list[Row], *, import_id: str = "", skip_routing: bool = False
) -> list[Outcome]:
    """intake.create for every row, in order, in this unit of work (an import's batch, or concurrent
    CreateLead calls grouped into one transaction): each row sees the ones before it."""
    repo = ImportRepository(uow)
    ids = [r.intake_id for r in batch]
    if policies.versions_seen(uow) is None:
        # The policy versions (the policy cache's check) and the replays in one round trip.
        versions, stored = await repo.versions_and_intakes(ids)
        policies.assume_versions(uow, versions)
    else:
        stored = await repo.intakes(ids)
    intake_policy = await policies.load(uow, policies.INTAKE)
    checked: list[lead_pb2.Lead | SalesopsError] = []
    for r in batch:
        try:
            lead = intake.validate(sanitize_create(r.raw), intake_policy, r.prefix)
            intake.stamp_source(lead, r.who, import_id)
            checked.append(lead)
        except SalesopsError as exc:
            checked.append(exc)
    fresh = [(i, c) for i, c in enumerate(checked) if isinstance(c, lead_pb2.Lead) and ids[i] not in stored]
    known = _Known()
    # The leads sharing the fresh rows' phones or e-mails, and those under the ids the replays name
    # and the fresh rows would take (usually none): one round trip.
    wanted = {i.lead_id for i in stored.values()} | {batch[i].raw.lead_id or ids[i] for i, _ in fresh}
    sharing, leads = await repo.by_contacts_and_ids(
        [c.contact.phone for _, c in fresh], [c.contact.email for _, c in fresh], wanted
    )
    for row in sharing:
        known.add(row)
    known.taken |= set(leads)
    threshold = intake_policy.company_similarity_threshold or 0.0
    if threshold > 0:
        names = {c.company.normalized_name for _, c in fresh if c.company.normalized_name}
        known.near = await repo.names_near({n: intake.company_key(n) for n in names}, intake.NEIGHBOURS)
    rows = _Rows(
        uow, import_id, skip_routing, known, intake_policy, threshold,
        await policies.grading_rules(uow), await TenantPolicies.load(uow), Roster(uow),
    )  # fmt: skip
    if not skip_routing and len(fresh) > 1:
        await rows.roster.prefetch(rows.tenant.routing)
    out: list[Outcome] = []
    # Decided in memory and flushed once at the end: the rows are inserted in bulk, not one by one.
    with uow.session.no_autoflush:
        async with batch_inserts(uow), uow.gathered_events():
            for i, (r, valid) in enumerate(zip(batch, checked, strict=True)):
                done = known.intakes.get(ids[i])
                if done is not None:
                    out.append(intake.IntakeResult(done.row, done.outcome, ids[i], replayed=True))
                elif ids[i] in stored:
                    out.append(_replay(stored[ids[i]], leads))
                elif isinstance(valid, SalesopsError):
                    out.append(valid)
                else:
                    res = await rows.intake(r, valid)
                    if not isinstance(res, SalesopsError):
                        known.intakes[ids[i]] = res
                        leads[res.row.lead_id] = res.row
                    out.append(res)
        await uow.session.flush()  # what batch_inserts did not write (merged leads' counts)
    await rows.roster.stamp()  # last: after the leads and counters (the lock order)
    return out


def _replay(stored: IntakeRow, leads: dict[str, LeadRow]) -> Outcome:
    row = leads.get(stored.lead_id)
    if row is None:  # as intake._replay: the recorded lead must be there
        return NotFound("lead", stored.lead_id)
    return intake.IntakeResult(row, stored.outcome, stored.intake_id, replayed=True)


@dataclass
class _Rows:
    """What every row of the batch is decided with."""

    uow: UnitOfWork
    import_id: str
    skip_routing: bool
    known: _Known
    intake_policy: Any
    threshold: float
    rules: grading.Rules
    tenant: TenantPolicies
    roster: Roster

    async def intake(self, r: Row, lead: lead_pb2.Lead) -> Outcome:
        """intake.create for one validated row, from what the batch knows."""
        uow, known, raw, intake_id, at, who = self.uow, self.known, r.raw, r.intake_id, r.at, r.who
        phone, email, company_norm = lead.contact.phone, lead.contact.email, lead.company.normalized_name
        existing = known.by_contact(phone, email)
        similar: list[dedupe.Match] = []
        if company_norm and self.threshold > 0:
            similar = dedupe.similar_companies(company_norm, known.names_near(company_norm), self.threshold)
        views = [intake.existing_lead(r) for r in existing]
        decision = dedupe.decide(phone, email, views, similar, intake.exact_action(self.intake_policy))
        if decision.action == dedupe.MERGE:
            target = next(r for r in existing if r.lead_id == decision.merge_into)
            return await intake.merge_into(uow, target, lead, decision, intake_id, at)
        lead_id = raw.lead_id or intake_id
        if lead_id in known.taken:
            # Row by row, its insert would fail on the key twice: the same answer here.
            return Aborted("a concurrent request changed the same data; retry", reason="CONCURRENT_WRITE")
        data = to_dict(lead)  # the facts' and the body's (intake.new_lead)
        result = grading.grade(intake.grading_facts(lead, [], data), self.rules, at)
        candidates = decision.candidates
        row, outcome, stored = intake.new_lead(
            uow, who, lead, lead_id, intake_id, result, candidates, at, data
        )
        await intake.announce_created(uow, who, row, lead, result, candidates, self.import_id)
        region_pool = pool_rules.pool_for_region(self.tenant.pools, row.region)
        row.pool_id, row.pool_entry_reason = region_pool.pool_id, "NEW_LEAD"
        if not self.skip_routing:
            await route_new(uow, self.roster, row, self.tenant, at)
        known.created(row)
        return intake.IntakeResult(row, outcome, intake_id, candidates=list(candidates), stored=stored)
