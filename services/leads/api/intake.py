"""CreateLead and ImportLeads: proto <-> the intake use case; what the caller may see of the result."""

from __future__ import annotations

from datetime import datetime

from ulid import ULID

from kit.auth import Principal
from kit.errors import InvalidArgument, PermissionDenied, SalesopsError
from kit.grpc import context as call
from kit.grpc.errors import to_status_proto
from kit.resources import UnitOfWork
from salesops.leads.v1 import enums_pb2, lead_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads import access, imports, intake, lead_views, validation
from services.leads.api.base import ApiBase, Ctx
from services.leads.api.intake_groups import IntakeGroups, Waiting
from services.leads.convert import enum_value, now, ts
from services.leads.domain import dedupe
from services.leads.intake_views import present_created
from services.leads.store import LeadRow

MAX_IMPORT_ROWS = 1000
IMPORT_BATCH = 250  # rows per transaction: few commits, and other writers get a turn between batches


async def intake_answer(
    uow: UnitOfWork, who: Principal, sent: lead_pb2.Lead, res: intake.IntakeResult
) -> pb.CreateLeadResponse:
    """The create's answer. A new lead is shown as created (the caller wrote it); a replay or a merge
    onto a lead outside the caller's scope says so and shows nothing of that lead."""
    out = pb.CreateLeadResponse(
        outcome=pb.IntakeOutcome.Value("INTAKE_OUTCOME_" + res.outcome),
        intake_id=res.intake_id,
        replayed=res.replayed,
    )
    fresh = not res.replayed and res.outcome != intake.MERGED
    if fresh or access.can_view(who, res.row):
        # A lead created just now: its candidates are known, nothing more to read of them.
        new = [_candidate(m, res.row) for m in res.candidates] if fresh else None
        if fresh and new is not None and res.stored is not None:  # from the messages it was stored from
            out.lead.CopyFrom(await present_created(uow, who, res.row, res.stored, new))
        else:
            out.lead.CopyFrom(await lead_views.present(uow, who, res.row, new_candidates=new))
        return out
    out.lead_hidden = True
    if sent.lead_id and sent.lead_id == res.row.lead_id:
        out.lead.lead_id = sent.lead_id  # the id the caller sent, nothing more
    return out


def _candidate(m: dedupe.Match, row: LeadRow) -> lead_pb2.DuplicateCandidate:
    """A candidate as stored at intake (store.DuplicateRow: OPEN, detected at creation)."""
    c = lead_pb2.DuplicateCandidate(
        lead_id=m.lead_id,
        match_kind=enum_value(enums_pb2.DuplicateMatchKind, m.kind),
        score=m.score,
        display_name=m.display_name,
        state=lead_pb2.DUPLICATE_CANDIDATE_STATE_OPEN,
    )
    c.detect_time.CopyFrom(ts(row.created_at))
    return c


def _import_row(request: pb.ImportLeadsRequest, item: pb.ImportLeadRow) -> lead_pb2.Lead:
    lead = lead_pb2.Lead()
    lead.CopyFrom(item.lead)
    if not lead.HasField("source") or not lead.source.channel:
        src = lead_pb2.LeadSource()
        src.CopyFrom(request.default_source)
        if not src.channel:
            src.channel = enums_pb2.LEAD_CHANNEL_IMPORT
        src.MergeFrom(lead.source)
        lead.source.CopyFrom(src)
    return lead


def _check_import(who: Principal, request: pb.ImportLeadsRequest) -> None:
    if not who.has_role(*access.IMPORTERS):
        raise PermissionDenied("bulk import is for sales-ops admins and partner systems", reason="NOT_ADMIN")
    v = []
    if not request.import_id or not validation.ID.match(request.import_id):
        v.append(("import_id", "required: 1-64 letters, digits, '-' or '_'"))
    if not 1 <= len(request.rows) <= MAX_IMPORT_ROWS:
        v.append(("rows", "1 to 1,000 rows"))
    if v:
        raise InvalidArgument(
            f"invalid import: {v[0][0]}: {v[0][1]}",
            [InvalidArgument.field(f, d).violations[0] for f, d in v],
        )


class IntakeApi(ApiBase):
    _intake_groups: IntakeGroups | None = None

    async def CreateLead(self, request: pb.CreateLeadRequest, context: Ctx) -> pb.CreateLeadResponse:
        who = call.principal()
        at = now()
        if request.assign_to_creator:  # a claim as well: served alone, beside the groups
            return await self._create_alone(who, request, at)
        if self._intake_groups is None:
            self._intake_groups = IntakeGroups(self._create_alone, self._create_group)
        # An id made here is new: only a client-made one can be a replay.
        return await self._intake_groups.create(who, request, at, request.lead.lead_id or str(ULID()))

    async def _create_alone(
        self, who: Principal, request: pb.CreateLeadRequest, at: datetime
    ) -> pb.CreateLeadResponse:
        """One CreateLead in its own transaction."""
        prepared = None
        if self.rt.db.serialises_writers:
            # The fuzzy-match read beside the writer (a WAL reader), not inside the writers' turn.
            async with self.read(who) as uow:
                prepared = await intake.prepare(uow, request.lead)

        attempts = 0

        async def work(uow: UnitOfWork) -> pb.CreateLeadResponse:
            nonlocal attempts
            attempts += 1  # a re-run (a unique-key race) reads everything again, in its transaction
            res = await intake.create(
                uow,
                who,
                request.lead,
                at,
                assign_to_creator=request.assign_to_creator,
                prepared=prepared if attempts == 1 else None,
            )
            return await intake_answer(uow, who, request.lead, res)

        return await self.write(who, work)

    async def _create_group(
        self, tenant: str, waiting: list[Waiting]
    ) -> list[pb.CreateLeadResponse | SalesopsError]:
        """CreateLead calls of one tenant decided together in one transaction, in arrival order;
        each answered as its caller may see it."""
        rows = [imports.Row(w.request.lead, w.intake_id, w.who, w.at) for w in waiting]

        async def work(uow: UnitOfWork) -> list[pb.CreateLeadResponse | SalesopsError]:
            out: list[pb.CreateLeadResponse | SalesopsError] = []
            for w, res in zip(waiting, await imports.intake_rows(uow, rows), strict=True):
                if isinstance(res, SalesopsError):
                    out.append(res)
                else:
                    out.append(await intake_answer(uow, w.who, w.request.lead, res))
            return out

        return await self.tx.run(tenant, work)

    async def ImportLeads(self, request: pb.ImportLeadsRequest, context: Ctx) -> pb.ImportLeadsResponse:
        """Rows go in batches of IMPORT_BATCH, one transaction each (validate-only: one rolled-back
        transaction for all), decided as a batch (imports.py); a rejected row writes nothing and
        the others still land. Every row gets its answer."""
        who = call.principal()
        _check_import(who, request)
        at = now()
        rows = [_import_row(request, item) for item in request.rows]
        if request.validate_only:
            async with self.dry_run(who) as uow:
                # Answered before the rollback expires the stored leads the rows were matched with.
                return _answers(request, await imports.import_rows(uow, who, _batch(request, rows, 0), at))
        outcomes: list[imports.Outcome] = []
        for start in range(0, len(rows), IMPORT_BATCH):
            batch = _batch(request, rows[start : start + IMPORT_BATCH], start)

            async def work(uow: UnitOfWork, batch: imports.ImportRows = batch) -> list[imports.Outcome]:
                return await imports.import_rows(uow, who, batch, at)

            try:
                outcomes += await self.write(who, work)
            except SalesopsError as exc:  # the batch's transaction failed as a whole (a lost race twice)
                outcomes += [exc] * len(batch.leads)
        return _answers(request, outcomes)


def _answers(request: pb.ImportLeadsRequest, outcomes: list[imports.Outcome]) -> pb.ImportLeadsResponse:
    """Each row's answer, and the counts."""
    out = pb.ImportLeadsResponse(import_id=request.import_id)
    for i, (item, res) in enumerate(zip(request.rows, outcomes, strict=True)):
        result = out.results.add(row_ref=item.row_ref, index=i)
        if isinstance(res, SalesopsError):
            result.outcome = pb.INTAKE_OUTCOME_REJECTED
            result.error.CopyFrom(to_status_proto(res, "leads"))
            out.rejected_count += 1
            continue
        result.outcome = pb.IntakeOutcome.Value("INTAKE_OUTCOME_" + res.outcome)
        result.lead_id = res.row.lead_id if not request.validate_only or res.outcome == intake.MERGED else ""
        for m in res.candidates:
            result.duplicate_candidates.add(
                lead_id=m.lead_id,
                match_kind=enum_value(enums_pb2.DuplicateMatchKind, m.kind),
                score=m.score,
                display_name=m.display_name,
            )
        if res.outcome == intake.MERGED:
            out.merged_count += 1
        else:
            out.created_count += 1
            if res.outcome == intake.CREATED_FLAGGED:
                out.flagged_count += 1
    return out


def _batch(request: pb.ImportLeadsRequest, rows: list[lead_pb2.Lead], start: int) -> imports.ImportRows:
    return imports.ImportRows(rows, request.import_id, start, skip_routing=request.skip_routing)
