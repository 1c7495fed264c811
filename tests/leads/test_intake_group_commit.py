"""Group commit of CreateLead: concurrent calls of one tenant decided together in one transaction
answer, and store, exactly what the same calls made one by one in that order would have.

The rows are those of the import equivalence test (merges into stored leads and into each other,
fuzzy flags, routing over both teams, refusals, replays of stored intakes), plus idempotent retries
of two of them sent at the same time, all fired at once in one tenant. Their order of decision is
their arrival (the intake's receive time); the same calls are then made one by one in that order
in another tenant and everything is compared."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from salesops.leads.v1 import enums_pb2, lead_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads.store import IntakeRow
from tests.leads.conftest import Leads
from tests.leads.test_import_batch_matches_one_by_one import (
    BATCH,
    ONE_BY_ONE,
    _answer,
    _rows,
    _seed,
    _stored,
    _Tenant,
)


def _concurrent_rows() -> list[lead_pb2.Lead]:
    """The import test's rows, where a second use of an id is the same request again (a retry)."""
    first: dict[str, lead_pb2.Lead] = {}
    out = []
    for lead in _rows():
        if lead.lead_id in first:
            lead = first[lead.lead_id]
        first.setdefault(lead.lead_id, lead)
        out.append(lead)
    return out


def _answer_of(res: Any) -> tuple[Any, ...]:
    if isinstance(res, grpc.aio.AioRpcError):
        return _answer(pb.INTAKE_OUTCOME_REJECTED, "", [], False, res.code().value[0])
    new = not res.replayed and res.outcome != pb.INTAKE_OUTCOME_MERGED
    return _answer(
        res.outcome, res.lead.lead_id, res.lead.duplicate_candidates if new else [], res.replayed, 0
    )


async def _call(t: _Tenant, lead: lead_pb2.Lead) -> Any:
    try:
        return await t.call("CreateLead", pb.CreateLeadRequest(lead=lead))
    except grpc.aio.AioRpcError as exc:
        return exc


async def _received(leads: Leads, tenant: str) -> dict[str, Any]:
    async with leads.db.session(tenant, read_only=True) as s:
        return {i.intake_id: i.receive_time for i in (await s.scalars(select(IntakeRow))).all()}


async def test_concurrent_creates_grouped_answer_as_one_by_one(
    leads: Leads, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="salesops.groups")
    grouped, single = _Tenant(leads, BATCH), _Tenant(leads, ONE_BY_ONE)
    for t in (grouped, single):
        await _seed(t)
    seeded = set(await _received(leads, BATCH))
    rows = _concurrent_rows()
    answers = await asyncio.gather(*(_call(grouped, lead) for lead in rows))
    assert any("CreateLead group of" in r.getMessage() for r in caplog.records), "no group was formed"

    # The order they were decided in: by receive time; replays and refusals wrote nothing, so any
    # place after their original gives the same answer.
    received = await _received(leads, BATCH)
    firsts: dict[str, int] = {}
    for i, lead in enumerate(rows):
        if lead.lead_id in received and lead.lead_id not in seeded:
            firsts.setdefault(lead.lead_id, i)
    order = sorted(firsts.values(), key=lambda i: received[rows[i].lead_id])
    order += [i for i in range(len(rows)) if i not in set(order)]
    expected: dict[int, tuple[Any, ...]] = {}
    for i in order:
        expected[i] = _answer_of(await _call(single, rows[i]))

    got = [_answer_of(a) for a in answers]
    assert got == [expected[i] for i in range(len(rows))]
    outcomes = [g[0] for g in got]
    assert outcomes.count("INTAKE_OUTCOME_REJECTED") == 2  # each caller its own error, the others land
    assert outcomes.count("INTAKE_OUTCOME_MERGED") >= 6 and sum(1 for g in got if g[3]) == 3  # replays
    stored_grouped, stored_single = await _stored(leads, BATCH), await _stored(leads, ONE_BY_ONE)
    for key in ("leads", "duplicates", "intakes", "loads", "wrr", "assigned", "events"):
        assert stored_grouped[key] == stored_single[key], key


async def test_the_same_new_contact_sent_at_once_makes_one_lead(leads: Leads) -> None:
    """Sixteen calls at once with one phone and no ids: one lead, fifteen intakes merged into it."""
    lead = lead_pb2.Lead(
        contact=lead_pb2.LeadContact(name="Wang", phone="13911112222"),
        source=lead_pb2.LeadSource(channel=enums_pb2.LEAD_CHANNEL_WEB_FORM),
        region="east/shanghai",
    )
    answers = await asyncio.gather(
        *(leads.call("CreateLead", pb.CreateLeadRequest(lead=lead)) for _ in range(16))
    )
    ids = {a.lead.lead_id for a in answers}
    assert len(ids) == 1
    outcomes = sorted(pb.IntakeOutcome.Name(a.outcome) for a in answers)
    assert outcomes == ["INTAKE_OUTCOME_CREATED"] + ["INTAKE_OUTCOME_MERGED"] * 15
    got = await leads.call("GetLead", pb.GetLeadRequest(lead_id=ids.pop()))
    assert got.lead.intake_count == 16
