"""Intake's performance paths keep their meaning: ImportLeads in batched transactions with a savepoint
per row, and tenant policies cached in the process yet never stale once another writer saved them."""

from __future__ import annotations

import grpc
import pytest

from kit.resources import Transactions
from salesops.leads.v1 import leads_service_pb2 as pb
from salesops.leads.v1 import policies_pb2
from services.leads import policies
from services.leads.api.intake import IMPORT_BATCH
from services.leads.store import transactions
from tests.leads.conftest import Leads
from tests.leads.helpers import events, hot_lead


def _company(i: int) -> str:
    # Spread over many fuzzy-match blocks (first two letters), as real names are.
    return f"{chr(97 + i % 26)}{chr(97 + i // 26 % 26)} Holdings {i}"


async def _import(leads: Leads, request: pb.ImportLeadsRequest) -> pb.ImportLeadsResponse:
    # A generous deadline: a shared 2-core machine under load, not a performance check (bench/ is).
    return await leads.stub.ImportLeads(request, metadata=leads.md("admin", "demo"), timeout=300)  # type: ignore[misc,no-any-return]


def _rows(n: int) -> list[pb.ImportLeadRow]:
    rows = [
        pb.ImportLeadRow(row_ref=f"r{i}", lead=hot_lead(phone=f"1380001{i:04d}", company=_company(i)))
        for i in range(n)
    ]
    bad = IMPORT_BATCH + 7  # in the second batch
    rows[bad].lead.contact.phone = "12"
    rows[-1].lead.contact.phone = rows[3].lead.contact.phone  # a duplicate across batches
    return rows


async def test_import_batches_answer_every_row_and_a_rejected_row_leaves_nothing(leads: Leads) -> None:
    n = IMPORT_BATCH + 30
    rows = _rows(n)
    dry = await _import(leads, pb.ImportLeadsRequest(import_id="IMP-DRY", rows=rows, validate_only=True))
    assert len(dry.results) == n
    assert (dry.created_count, dry.merged_count, dry.rejected_count) == (n - 2, 1, 1)
    assert dry.results[IMPORT_BATCH + 7].outcome == pb.INTAKE_OUTCOME_REJECTED
    assert dry.results[-1].outcome == pb.INTAKE_OUTCOME_MERGED
    assert (await leads.call("ListLeads", pb.ListLeadsRequest())).total_size == 0
    assert await events(leads.db) == []  # validate-only: nothing written, no event staged

    out = await _import(leads, pb.ImportLeadsRequest(import_id="IMP-REAL", rows=rows))
    assert [r.index for r in out.results] == list(range(n))
    assert [r.row_ref for r in out.results] == [r.row_ref for r in rows]
    assert (out.created_count, out.merged_count, out.rejected_count) == (n - 2, 1, 1)
    bad = out.results[IMPORT_BATCH + 7]
    assert bad.outcome == pb.INTAKE_OUTCOME_REJECTED and not bad.lead_id
    assert bad.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert out.results[-1].lead_id == out.results[3].lead_id
    # The rows around the rejected one landed, in the same batch, and each announced once.
    assert out.results[IMPORT_BATCH + 6].lead_id and out.results[IMPORT_BATCH + 8].lead_id
    assert (await leads.call("ListLeads", pb.ListLeadsRequest())).total_size == n - 2
    assert len(await events(leads.db, "leads.LeadCreated")) == n - 2
    assert len(await events(leads.db, "leads.LeadMerged")) == 1


async def test_a_policy_saved_elsewhere_is_seen_by_the_next_intake(leads: Leads) -> None:
    first = await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead(phone="13800009001")))
    again = await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead(phone="13800009001")))
    assert again.outcome == pb.INTAKE_OUTCOME_MERGED  # default policy, now cached in the process
    # Another replica saves the intake policy: straight into the store, past this process's cache.
    other: Transactions = transactions(leads.db)

    async def save(uow) -> None:  # type: ignore[no-untyped-def]
        stored = await policies.STORES[policies.INTAKE].load(uow)
        doc = stored.value
        doc.exact_match_action = policies_pb2.DEDUPE_ACTION_FLAG
        await policies.STORES[policies.INTAKE].put(uow, doc, stored.etag, "other-replica")

    await other.run("demo", save)
    flagged = await leads.call("CreateLead", pb.CreateLeadRequest(lead=hot_lead(phone="13800009001")))
    assert flagged.outcome == pb.INTAKE_OUTCOME_CREATED_FLAGGED
    assert flagged.lead.lead_id != first.lead.lead_id


@pytest.mark.parametrize("kind", [policies.INTAKE])
async def test_a_save_rolled_back_is_never_served_from_the_cache(leads: Leads, kind: str) -> None:
    tx: Transactions = transactions(leads.db)

    async def save_then_fail(uow) -> None:  # type: ignore[no-untyped-def]
        doc = await policies.load(uow, kind)
        doc.exact_match_action = policies_pb2.DEDUPE_ACTION_FLAG
        await policies.save(uow, kind, doc, ["exact_match_action"], "admin")
        assert (await policies.load(uow, kind)).exact_match_action == policies_pb2.DEDUPE_ACTION_FLAG
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await tx.run("demo", save_then_fail)

    async def save_other(uow) -> None:  # type: ignore[no-untyped-def]
        doc = await policies.load(uow, kind)
        doc.company_similarity_threshold = 0.5
        await policies.save(uow, kind, doc, ["company_similarity_threshold"], "admin")

    # The committed save takes the version number the rolled-back one had used.
    await tx.run("demo", save_other)
    async with tx.read("demo") as uow:
        doc = await policies.load(uow, kind)
    assert doc.version == 1
    assert doc.exact_match_action == policies_pb2.DEDUPE_ACTION_MERGE
    assert doc.company_similarity_threshold == pytest.approx(0.5)


async def test_a_similar_company_created_earlier_in_the_same_batch_is_flagged(leads: Leads) -> None:
    await leads.call(
        "CreateLead", pb.CreateLeadRequest(lead=hot_lead(phone="13800007000", company="Zenith Motors"))
    )
    rows = [
        pb.ImportLeadRow(row_ref="a", lead=hot_lead(phone="13800007001", company="Quartz Dynamics")),
        pb.ImportLeadRow(row_ref="bad", lead=hot_lead(phone="12", company="Quartz Dynamic")),
        pb.ImportLeadRow(row_ref="b", lead=hot_lead(phone="13800007002", company="Quartz Dynamic")),
        pb.ImportLeadRow(row_ref="c", lead=hot_lead(phone="13800007003", company="Zenith Motor")),
    ]
    out = await _import(leads, pb.ImportLeadsRequest(import_id="IMP-SIMILAR", rows=rows))
    a, bad, b, c = out.results
    assert bad.outcome == pb.INTAKE_OUTCOME_REJECTED
    # Row b sees row a (created in this batch), and only it: the rejected row left nothing behind.
    assert b.outcome == pb.INTAKE_OUTCOME_CREATED_FLAGGED
    assert [m.lead_id for m in b.duplicate_candidates] == [a.lead_id]
    assert c.outcome == pb.INTAKE_OUTCOME_CREATED_FLAGGED  # and the lead stored before the batch
    assert len(c.duplicate_candidates) == 1
