"""repositories.intakes.new_row builds an intake's rows without the instrumented constructor: what
it stores, through the ORM's flush or the batch's Core insert, is what the constructor's row
stores, column for column (the columns' defaults included), and what the constructor refuses it
refuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import inspect, select

from kit.resources import UnitOfWork
from services.leads.repositories.intakes import batch_inserts, new_row, pending_adder
from services.leads.store import DuplicateRow, IntakeRow, LeadRow, transactions
from tests.leads.conftest import Leads

AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def _lead(lead_id: str) -> dict[str, Any]:
    # Only some columns given: the others take their defaults (dict, "", 0, 1, False, None).
    return {
        "lead_id": lead_id,
        "status": "IN_POOL",
        "display_name": "Acme",
        "phone": "+8613900000001",
        "company_norm": "acme",
        "grade": "B",
        "score": 40,
        "body": {"region": "east"},
        "created_at": AT,
        "updated_at": AT,
    }


def _keys(cls: type[Any]) -> list[str]:
    """The attributes of the table's own columns (not column_property expressions)."""
    return [a.key for a in inspect(cls).column_attrs if a.columns[0].table is cls.__table__]


def _columns(row: Any) -> dict[str, Any]:
    return {k: getattr(row, k) for k in _keys(type(row))}


def _in_memory(row: Any) -> dict[str, Any]:
    """The columns an object holds without a load (a flushed constructor's row leaves the NULLs it
    did not set unloaded: reading them would query; a new_row's holds them as None)."""
    unloaded = inspect(row).unloaded
    return {k: None if k in unloaded else getattr(row, k) for k in _keys(type(row))}


async def _stored(leads: Leads, cls: type[Any], key: str, value: str) -> dict[str, Any]:
    async with leads.db.session("demo", read_only=True) as s:
        row = (await s.scalars(select(cls).where(getattr(cls, key) == value))).one()
        return _columns(row)


@pytest.mark.parametrize("batched", [False, True], ids=["flush", "batch"])
async def test_new_row_stores_what_the_constructor_stores(leads: Leads, batched: bool) -> None:
    made: dict[str, Any] = {}
    seen: dict[str, dict[str, Any]] = {}  # the objects' columns once written (answers are made from them)

    async def work(uow: UnitOfWork) -> None:
        add = pending_adder(uow)
        for lead_id, build in (("BY-INIT", LeadRow), ("BY-NEW-ROW", None)):
            values = _lead(lead_id)
            row = LeadRow(**values) if build else new_row(LeadRow, **values)
            row.pool_id = "default"  # a later change goes through the instrumentation
            add(row)
            made[lead_id] = row
        session = uow.session
        session.add(IntakeRow(intake_id="I-INIT", lead_id="BY-INIT", outcome="CREATED", receive_time=AT))
        session.add(
            new_row(IntakeRow, intake_id="I-NEW", lead_id="BY-INIT", outcome="CREATED", receive_time=AT)
        )
        kind = {"other_lead_id": "BY-NEW-ROW", "kind": "COMPANY", "score": 0.9, "detect_time": AT}
        session.add(DuplicateRow(lead_id="BY-INIT", **kind))
        session.add(new_row(DuplicateRow, lead_id="BY-NEW-ROW", **kind))

    async def flushed(uow: UnitOfWork) -> None:
        await work(uow)
        await uow.session.flush()
        seen.update({k: _in_memory(r) for k, r in made.items()})
        assert not inspect(made["BY-NEW-ROW"]).unloaded & set(_keys(LeadRow))

    async def batch(uow: UnitOfWork) -> None:
        async with batch_inserts(uow):
            await work(uow)
        seen.update({k: _in_memory(r) for k, r in made.items()})

    await transactions(leads.db).run("demo", batch if batched else flushed)
    by_init = await _stored(leads, LeadRow, "lead_id", "BY-INIT")
    by_new = await _stored(leads, LeadRow, "lead_id", "BY-NEW-ROW")
    assert by_new.pop("lead_id") == "BY-NEW-ROW" and by_init.pop("lead_id") == "BY-INIT"
    assert by_new == by_init
    assert by_new["grading"] == {} and by_new["intake_count"] == 1 and by_new["tenant_id"] == "demo"
    # The objects answered from are as stored, defaults filled in, in either path.
    assert seen["BY-NEW-ROW"] | {"lead_id": "BY-INIT"} == seen["BY-INIT"]
    i_init = await _stored(leads, IntakeRow, "intake_id", "I-INIT")
    i_new = await _stored(leads, IntakeRow, "intake_id", "I-NEW")
    assert {**i_new, "intake_id": "I-INIT"} == i_init
    d_init = await _stored(leads, DuplicateRow, "lead_id", "BY-INIT")
    d_new = await _stored(leads, DuplicateRow, "lead_id", "BY-NEW-ROW")
    assert {**d_new, "lead_id": "BY-INIT"} == d_init


def test_new_row_refuses_what_the_constructor_refuses() -> None:
    with pytest.raises(TypeError):
        LeadRow(lead_id="X", no_such_column=1)
    with pytest.raises(TypeError, match="no_such_column"):
        new_row(LeadRow, lead_id="X", no_such_column=1)
