"""A CreateLead group's routing writes (the reps' load counters and last-assigned stamps, sent as
driver statements with the tenant as a parameter, not through the session's tenant criterion):
exact for the caller's tenant, and nothing of another tenant with the same rep ids is touched."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads.convert import aware
from services.leads.repositories import rep_loads
from services.leads.store import LeadRow, RepLoadRow, RepRow, transactions
from tests.leads.conftest import Leads
from tests.leads.helpers import A_TEAM, configure, hot_lead

OTHER = "other-tenant"
REPS = [f"rep-a{n}" for n in range(1, 5)]
STAMPED = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)


async def _other_tenant_reps(leads: Leads) -> None:
    """The same rep ids in another tenant: stamped long ago, each with 7 open leads counted."""
    async with leads.db.session(OTHER) as s:
        for user_id in REPS:
            s.add(RepRow(user_id=user_id, team_path=A_TEAM, last_assigned_time=STAMPED, updated_at=STAMPED))
            s.add(RepLoadRow(user_id=user_id, open_leads=7))
        await s.commit()


async def test_a_group_stamps_and_counts_its_own_tenants_reps_only(
    leads: Leads, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="salesops.groups")
    await configure(leads)
    await _other_tenant_reps(leads)
    hot = [hot_lead(f"G{i}", phone=f"1380000{i:04d}", company=f"Company {i}") for i in range(12)]
    await asyncio.gather(*(leads.call("CreateLead", pb.CreateLeadRequest(lead=lead)) for lead in hot))
    assert any("CreateLead group of" in r.getMessage() for r in caplog.records), "no group was formed"

    async with transactions(leads.db).read("demo") as uow:
        owned = [r for r in (await uow.session.scalars(select(LeadRow))).all() if r.owner_user_id]
        reps = {r.user_id: r for r in (await uow.session.scalars(select(RepRow))).all()}
        assert await rep_loads.counters(uow) == await rep_loads.counted(uow)
    assert len(owned) == len(hot)
    latest: dict[str, datetime] = defaultdict(lambda: datetime.min.replace(tzinfo=UTC))
    for row in owned:
        assert row.owner_user_id in REPS
        at = aware(row.assign_time)
        assert at is not None
        latest[row.owner_user_id] = max(latest[row.owner_user_id], at)
    # Least loaded over four reps: three leads each; each rep stamped with their latest lead.
    assert sorted(latest) == REPS
    assert {u: aware(reps[u].last_assigned_time) for u in REPS} == dict(latest)

    async with leads.db.session(OTHER, read_only=True) as s:
        other_reps = (await s.scalars(select(RepRow))).all()
        other_loads = (await s.scalars(select(RepLoadRow))).all()
    assert {r.user_id: aware(r.last_assigned_time) for r in other_reps} == dict.fromkeys(REPS, STAMPED)
    assert {r.user_id: r.open_leads for r in other_loads} == dict.fromkeys(REPS, 7)


async def test_a_stamp_never_moves_a_reps_last_assignment_backwards(leads: Leads) -> None:
    """A batch that commits after another with an earlier time (its leads arrived first) leaves the
    later stamp, by the batch statement and by the single one alike; a later time moves it on."""
    from datetime import timedelta

    from services.leads.repositories.reps import RepRepository

    await configure(leads)
    later, earlier = STAMPED + timedelta(hours=1), STAMPED
    tx = transactions(leads.db)

    async def stamp(values: dict[str, datetime], single: bool = False) -> None:
        async def work(uow: object) -> None:
            repo = RepRepository(uow)  # type: ignore[arg-type]
            if single:
                for user, at in values.items():
                    await repo.stamp_assigned(user, at)
            else:
                await repo.stamp_many(values)

        await tx.run("demo", work)

    async def stamps() -> dict[str, datetime | None]:
        async with tx.read("demo") as uow:
            rows = (await uow.session.scalars(select(RepRow).where(RepRow.user_id.in_(REPS[:2])))).all()
            return {r.user_id: aware(r.last_assigned_time) for r in rows}

    await stamp(dict.fromkeys(REPS[:2], later))
    await stamp({REPS[0]: earlier, REPS[1]: earlier})  # the batch statement (two rows: executemany)
    await stamp({REPS[0]: earlier}, single=True)
    assert await stamps() == dict.fromkeys(REPS[:2], later)
    await stamp({REPS[0]: later + timedelta(seconds=1)})  # one row: a single execute
    await stamp({REPS[1]: later + timedelta(seconds=2)}, single=True)
    assert await stamps() == {REPS[0]: later + timedelta(seconds=1), REPS[1]: later + timedelta(seconds=2)}


async def test_the_batch_statement_writes_round_robin_states_with_the_stamps(leads: Leads) -> None:
    """A batch's round-robin states go in the stamps' statement (RepRepository.stamp_many's `wrr`):
    a moved state is written whether or not the rep's stamp moves, a rep with only a stamp keeps its
    state, and another tenant's reps of the same ids keep theirs."""
    from datetime import timedelta

    from services.leads.repositories.reps import RepRepository

    await configure(leads)
    await _other_tenant_reps(leads)
    tx = transactions(leads.db)
    later = STAMPED + timedelta(hours=1)

    async def write(stamps: dict[str, datetime], wrr: dict[str, int]) -> None:
        async def work(uow: object) -> None:
            await RepRepository(uow).stamp_many(stamps, wrr)  # type: ignore[arg-type]

        await tx.run("demo", work)

    async def state(tenant: str = "demo") -> dict[str, tuple[int, datetime | None]]:
        async with tx.read(tenant) as uow:
            rows = (await uow.session.scalars(select(RepRow).where(RepRow.user_id.in_(REPS)))).all()
            return {r.user_id: (r.wrr_current, aware(r.last_assigned_time)) for r in rows}

    await write(dict.fromkeys(REPS[:2], later), {})
    before = await state()
    await write({REPS[0]: STAMPED, REPS[2]: later}, {REPS[0]: 5, REPS[1]: -3})  # REPS[0]'s stamp is older
    after = await state()
    assert after[REPS[0]] == (5, later)
    assert after[REPS[1]] == (-3, later)
    assert after[REPS[2]] == (before[REPS[2]][0], later)
    assert after[REPS[3]] == before[REPS[3]]
    await write({}, {REPS[3]: 7})  # one row: a single execute
    assert (await state())[REPS[3]] == (7, before[REPS[3]][1])
    assert {u: v[0] for u, v in (await state(OTHER)).items()} == dict.fromkeys(REPS, 0)
