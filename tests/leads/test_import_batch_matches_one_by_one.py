"""A batched ImportLeads decides every row as CreateLead would have, row after row: the same
replays, merges, flags, grades, routing (owners, pools, rep loads, WRR turns) and refusals.

The same rows go into two tenants of one server: one ImportLeads call in one, one CreateLead per
row in the other; then every answer and everything stored is compared."""

from __future__ import annotations

from collections import Counter
from typing import Any

import grpc
from sqlalchemy import select

from salesops.leads.v1 import enums_pb2, lead_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads.store import DuplicateRow, IntakeRow, LeadRow, RepLoadRow, RepRow, outbox
from tests.leads.conftest import Leads
from tests.leads.helpers import configure, hot_lead

BATCH, ONE_BY_ONE = "demo", "acme"


class _Tenant:
    """`configure` and the calls of one tenant."""

    def __init__(self, leads: Leads, tenant: str) -> None:
        self.leads, self.tenant = leads, tenant

    async def call(self, method: str, request: Any, user: str = "admin") -> Any:
        return await self.leads.call(method, request, user, self.tenant)


def _lead(lead_id: str, phone: str, **kw: Any) -> lead_pb2.Lead:
    return hot_lead(lead_id=lead_id, phone=phone, **kw)


def _company(n: int) -> str:
    # A block (first two letters) of its own: fuzzy ties among many equal scores are decided by the
    # order a block is read in, which neither path fixes; this compares the decisions, not that.
    letters = "bcdefghijklmnopqrstuvw"
    return f"{letters[n % 22]}{letters[n // 22 % 22]} Trading {n}"


def _rows() -> list[lead_pb2.Lead]:
    """Every intake path, several times over, in an order where each row depends on the ones before."""
    cold = {"budget": 0, "channel": enums_pb2.LEAD_CHANNEL_WEB_FORM}  # grade C: claim-only pool
    warm = {"budget": 5_000_000}  # 15 + 15 + 10 = grade B: team B, WRR
    rows = []
    for i in range(12):  # grade A: team A, least loaded (loads move as the batch assigns)
        rows.append(_lead(f"A{i}", f"1390000{i:04d}", company=_company(i)))
    for i in range(9):
        rows.append(_lead(f"B{i}", f"1390001{i:04d}", company=_company(100 + i), **warm))
    for i in range(4):
        rows.append(_lead(f"C{i}", f"1390002{i:04d}", company=_company(200 + i), **cold))
    rows += [
        _lead("M1", "13800005000"),  # the lead stored before: merged into it
        _lead("M2", "", email="old@example.com"),  # by e-mail, into the stored one
        _lead("M3", "13900000003"),  # a phone of this batch (A3): merged into A3
        _lead("M4", "13900000003", email="a3@example.com"),  # again A3 (intake_count 3)
        _lead("M5", "13988887777", email="b1@example.com"),  # e-mail of the next row's lead...
        _lead("M6", "13988887777"),  # ...whose phone M5 brought: merged into M5
        _lead("F1", "13977770001", company="Zenith Motors Shanghai"),  # similar to the stored one
        _lead("F2", "13977770002", company=_company(1) + "s"),  # similar to A1 of this batch
        _lead("A3", "13977770003"),  # A3's id again: a replay of A3, not a new lead
        _lead("M3", "13977770004"),  # M3's id again: a replay of the merge
        _lead("X1", "12"),  # refused: the phone
        _lead("X2", "", email="not-an-email"),  # refused: the e-mail
        _lead("P0", "13800005001"),  # imported before this batch: a replay from the database
        _lead("A12", "13977770005", region="west/chengdu"),  # A-grade outside east: the fallback pool
        _lead("ZN1", "13977770006", company="Zz Crowd 075x"),  # the crowd's names around its own
        _lead("ZN2", "13977770007", company="Zz Crowd 149"),  # at the block's end
        _lead("ZN3", "13977770008", company="Zz Crowd 075y"),  # beside ZN1, created just before
    ]
    return rows


async def _seed(t: _Tenant) -> None:
    await configure(t)
    # A block larger than the names a fuzzy match reads around a new name (intake.NEIGHBOURS a side).
    crowd = [_lead(f"Z{i}", f"1360000{i:04d}", company=f"Zz Crowd {i:03d}") for i in range(150)]
    await t.call(
        "ImportLeads", pb.ImportLeadsRequest(import_id="SEED", rows=[pb.ImportLeadRow(lead=z) for z in crowd])
    )
    for lead in (
        _lead("OLD", "13800005000", email="old@example.com", company="Zenith Motor Shanghai"),
        _lead("P0", "13800005001"),
    ):
        await t.call("CreateLead", pb.CreateLeadRequest(lead=lead))


async def _import(leads: Leads, request: pb.ImportLeadsRequest) -> pb.ImportLeadsResponse:
    # A generous deadline: a shared 2-core machine under load, not a performance check (bench/ is).
    return await leads.stub.ImportLeads(request, metadata=leads.md("admin", BATCH), timeout=300)  # type: ignore[misc,no-any-return]


def _answer(outcome: int, lead_id: str, candidates: Any, replayed: bool, code: int) -> tuple[Any, ...]:
    return (
        pb.IntakeOutcome.Name(outcome),  # type: ignore[arg-type]
        lead_id,
        sorted((c.lead_id, c.match_kind, round(c.score, 4)) for c in candidates),
        replayed,
        code,
    )


async def _one_by_one(t: _Tenant, rows: list[lead_pb2.Lead]) -> list[tuple[Any, ...]]:
    out = []
    for lead in rows:
        try:
            res = await t.call("CreateLead", pb.CreateLeadRequest(lead=lead))
        except grpc.aio.AioRpcError as exc:
            out.append(_answer(pb.INTAKE_OUTCOME_REJECTED, "", [], False, exc.code().value[0]))
            continue
        # A merge answers with the stored lead (its own candidates); an import row with none.
        new = not res.replayed and res.outcome != pb.INTAKE_OUTCOME_MERGED
        cands = res.lead.duplicate_candidates if new else []
        out.append(_answer(res.outcome, res.lead.lead_id, cands, res.replayed, 0))
    return out


def _batch_answers(res: pb.ImportLeadsResponse, seen_before: set[str]) -> list[tuple[Any, ...]]:
    out, ids = [], set(seen_before)
    for r, lead in zip(res.results, _rows(), strict=True):
        # ImportLeadResult has no `replayed`: a row whose id was taken before is a replay.
        replayed = r.outcome != pb.INTAKE_OUTCOME_REJECTED and lead.lead_id in ids
        if r.outcome != pb.INTAKE_OUTCOME_REJECTED:
            ids.add(lead.lead_id)
        cands = [] if replayed else r.duplicate_candidates
        out.append(_answer(r.outcome, r.lead_id, cands, replayed, r.error.code))
    return out


def _state(r: LeadRow) -> tuple[Any, ...]:
    return (
        r.status, r.grade, r.score, r.owner_user_id, r.pool_id, r.pool_entry_reason, r.team_path,
        r.supervisor_user_id, r.intake_count, r.duplicate_review_needed, r.sla_state, r.version,
        r.phone, r.email, r.company_norm, r.display_name,
    )  # fmt: skip


async def _stored(leads: Leads, tenant: str) -> dict[str, Any]:
    async with leads.db.session(tenant, read_only=True) as s:
        rows = (await s.scalars(select(LeadRow))).all()
        dups = (await s.scalars(select(DuplicateRow))).all()
        intakes = (await s.scalars(select(IntakeRow))).all()
        loads = (await s.scalars(select(RepLoadRow))).all()
        reps = (await s.scalars(select(RepRow))).all()
        events = (
            await s.execute(select(outbox.c.type, outbox.c.subject).where(outbox.c.tenant_id == tenant))
        ).all()
    return {
        "leads": {r.lead_id: _state(r) for r in rows},
        "duplicates": sorted((d.lead_id, d.other_lead_id, d.kind, round(d.score, 4), d.state) for d in dups),
        "intakes": sorted((i.intake_id, i.lead_id, i.outcome) for i in intakes),
        "loads": {x.user_id: x.open_leads for x in loads if x.open_leads},
        "wrr": {r.user_id: r.wrr_current for r in reps},
        "assigned": sorted(r.user_id for r in reps if r.last_assigned_time),
        "events": Counter((t, s) for t, s in events),
    }


async def test_a_batch_import_decides_every_row_as_create_lead_one_by_one(leads: Leads) -> None:
    batch, single = _Tenant(leads, BATCH), _Tenant(leads, ONE_BY_ONE)
    for t in (batch, single):
        await _seed(t)
    rows = _rows()
    request = pb.ImportLeadsRequest(
        import_id="IMP-EQ", rows=[pb.ImportLeadRow(row_ref=r.lead_id, lead=r) for r in rows]
    )
    dry = await _import(
        leads, pb.ImportLeadsRequest(import_id="IMP-EQ", rows=request.rows, validate_only=True)
    )
    res = await _import(leads, request)
    expected = await _one_by_one(single, rows)

    got = _batch_answers(res, {"OLD", "P0"})
    assert got == expected
    # Validate-only answers the same (the lead ids of rows that would be created are not given).
    dry_got = _batch_answers(dry, {"OLD", "P0"})
    assert [g[:1] + g[2:] for g in dry_got] == [e[:1] + e[2:] for e in expected]

    outcomes = Counter(g[0] for g in got)
    assert outcomes["INTAKE_OUTCOME_MERGED"] >= 6 and outcomes["INTAKE_OUTCOME_CREATED_FLAGGED"] >= 2
    assert outcomes["INTAKE_OUTCOME_REJECTED"] == 2 and sum(1 for g in got if g[3]) == 3  # replays

    stored_batch, stored_single = await _stored(leads, BATCH), await _stored(leads, ONE_BY_ONE)
    for key in ("leads", "duplicates", "intakes", "loads", "wrr", "assigned"):
        assert stored_batch[key] == stored_single[key], key
    # The same events about the same leads (the batch's in one statement; nothing of the dry run).
    assert stored_batch["events"] == stored_single["events"]
    owners = Counter(v[3] for v in stored_batch["leads"].values() if v[3])
    assert len(owners) >= 6 and sum(owners.values()) >= 20  # routing ran, over both teams


async def test_a_thousand_rows_import_in_one_call_each_answered(leads: Leads) -> None:
    await configure(leads)  # routing runs: four reps a team, capacity 20, then the fallback pool
    rows = [
        pb.ImportLeadRow(row_ref=f"r{i}", lead=hot_lead(phone=f"1370000{i:04d}", company=_company(i)))
        for i in range(1000)
    ]
    for i in range(100, 1000, 100):
        rows[i].lead.contact.phone = rows[i - 50].lead.contact.phone  # merged into a lead of the import
    rows[555].lead.contact.phone = "12"
    request = pb.ImportLeadsRequest(import_id="IMP-1000", rows=rows)
    dry = await _import(leads, pb.ImportLeadsRequest(import_id="IMP-1000", rows=rows, validate_only=True))
    out = await _import(leads, request)
    for res in (dry, out):
        assert [r.index for r in res.results] == list(range(1000))
        assert [r.row_ref for r in res.results] == [r.row_ref for r in rows]
        assert (res.created_count, res.merged_count, res.rejected_count) == (990, 9, 1)
        assert res.results[555].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert out.results[100].lead_id == out.results[50].lead_id
    stored = await _stored(leads, BATCH)
    assert len(stored["leads"]) == 990
    assert sum(n for (t, _), n in stored["events"].items() if t == "leads.LeadCreated") == 990
    assert sum(n for (t, _), n in stored["events"].items() if t == "leads.LeadMerged") == 9
    assert sorted(stored["loads"].values()) == [20] * 4  # team A's reps filled to capacity, no further
    assert sum(1 for v in stored["leads"].values() if v[3] is None and v[4]) == 990 - 80  # the rest pooled
    again = await _import(leads, request)  # the same import again: every row a replay
    assert [r.lead_id for r in again.results] == [r.lead_id for r in out.results]
    assert len((await _stored(leads, BATCH))["leads"]) == 990
