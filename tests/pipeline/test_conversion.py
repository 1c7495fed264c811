"""Converted leads become deals: one per lead, through the runtime's consumer of the leads stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from kit.config import Settings
from kit.events import new_envelope, service_stream
from kit.migrations import upgrade_to_head
from kit.runtime import Runtime, start_role
from salesops.common.v1.types_pb2 import Money
from salesops.leads.v1 import events_pb2 as lead_events
from salesops.leads.v1 import lead_pb2
from salesops.pipeline.v1 import deal_pb2, settings_pb2
from services.pipeline import consumers, pipeline_settings
from services.pipeline.app import SPEC
from services.pipeline.store import DealChangeRow, DealRow, outbox, processed_events, transactions
from tests.pipeline.helpers import in_days


def converted(lead_id: str, opportunity_id: str, **kw: object) -> lead_events.LeadConverted:
    kw.setdefault("amount_estimate", Money(amount_minor=500_000, currency="CNY"))
    kw.setdefault("actor_user_id", "rep-a1")
    kw.setdefault("owner_user_id", "rep-a1")
    evt = lead_events.LeadConverted(
        lead=lead_events.LeadContext(lead_id=lead_id),
        opportunity_id=opportunity_id,
        opportunity_name="ACME rollout",
        team_path="east/team-a",
        company=lead_pb2.LeadCompany(name="ACME Ltd", industry="mfg", city="Shanghai"),
        **kw,  # type: ignore[arg-type]
    )
    return evt


def fields(evt: lead_events.LeadConverted, tenant: str = "demo") -> dict[str, bytes | str]:
    env = new_envelope(consumers.LEAD_CONVERTED, tenant, evt, source="leads", subject=evt.lead.lead_id)
    return {"envelope": env.SerializeToString(), "type": env.type, "tenant": tenant, "id": env.id}


@pytest.fixture
async def rt(database_url: str, redis_url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime(replace(Settings.from_env("pipeline"), database_url=database_url, redis_url=redis_url))
    await upgrade_to_head("pipeline", runtime.db)
    try:
        yield runtime
    finally:
        await runtime.close()


async def deals(rt: Runtime, tenant: str = "demo") -> list[DealRow]:
    async with rt.db.session(tenant) as session:
        return list(await session.scalars(select(DealRow).order_by(DealRow.deal_id)))


async def applied(rt: Runtime) -> int:
    async with rt.db.engine.connect() as conn:
        p = processed_events
        n = await conn.scalar(
            select(func.count()).select_from(p).where(p.c.consumer_group == "pipeline-leads")
        )
    return int(n or 0)


async def test_converted_leads_become_one_deal_each_through_the_consumer(rt: Runtime) -> None:
    stream = service_stream("leads")
    stoppers = await start_role(rt, SPEC, "api")
    try:
        first = fields(converted("L1", "OPP-1", expected_close_date=in_days(45)))
        # The same event twice, then another event of the same conversion (leads re-emitting): one deal.
        for entry in (first, first, fields(converted("L1", "OPP-1-again"))):
            await rt.redis.xadd(stream, entry)  # type: ignore[arg-type]
        await rt.redis.xadd(stream, fields(converted("L2", "OPP-2", amount_estimate=Money())))  # type: ignore[arg-type]
        await rt.redis.xadd(stream, fields(converted("L1", "OPP-9"), tenant="acme"))  # type: ignore[arg-type]
        # Wait until the group has applied every distinct event (4: the duplicate entry shares an id).
        for _ in range(600):
            if await applied(rt) == 4:
                break
            await asyncio.sleep(0.05)
    finally:
        for stop in stoppers:
            await stop()
    rows = await deals(rt)
    assert [(r.deal_id, r.lead_id, r.origin, r.owner_user_id, r.org_path) for r in rows] == [
        ("OPP-1", "L1", "LEAD_CONVERSION", "rep-a1", "east/team-a"),
        ("OPP-2", "L2", "LEAD_CONVERSION", "rep-a1", "east/team-a"),
    ]
    one, two = rows
    assert (one.title, one.customer_name, one.amount_minor, one.currency) == (
        "ACME rollout",
        "ACME Ltd",
        500_000,
        "CNY",
    )
    assert (one.stage_id, one.probability, one.weighted_minor) == ("initial_contact", 10, 50_000)
    assert (
        one.expected_close_date.isoformat()
        == f"{in_days(45).year:04d}-{in_days(45).month:02d}-{in_days(45).day:02d}"
    )
    assert (two.amount_minor, two.currency) == (0, "CNY")  # no estimate: zero in the base currency
    assert (two.expected_close_date - datetime.now(UTC).date()).days in (89, 90)  # the default offset
    assert [r.deal_id for r in await deals(rt, "acme")] == ["OPP-9"]
    async with rt.db.session("demo") as session:
        created = await session.scalar(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.type == "pipeline.DealCreated", outbox.c.tenant_id == "demo")
        )
        history = await session.scalar(
            select(func.count()).select_from(DealChangeRow).where(DealChangeRow.deal_id == "OPP-1")
        )
    assert created == 2 and history == 7  # every tracked field recorded at creation


async def test_a_redelivered_conversion_in_one_transaction_finds_the_deal(rt: Runtime) -> None:
    handle = consumers.converted_handler(rt)
    at = datetime.now(UTC)
    for opp in ("OPP-A", "OPP-B"):
        env = new_envelope(
            consumers.LEAD_CONVERTED, "demo", converted("L7", opp), source="leads", occurred_at=at
        )
        async with rt.db.session("demo") as session:
            await handle(env, session)
            await session.commit()
    assert [r.deal_id for r in await deals(rt)] == ["OPP-A"]


async def test_conversion_follows_the_tenants_settings(rt: Runtime) -> None:
    tx = transactions(rt.db)
    custom = settings_pb2.PipelineSettings()
    custom.CopyFrom(pipeline_settings.DEFAULTS)
    custom.converted_deal_close_offset_days, custom.base_currency = 30, "EUR"
    await tx.run("demo", lambda uow: pipeline_settings.STORE.put(uow, custom, "", "admin"))
    handle = consumers.converted_handler(rt)
    at = datetime.now(UTC)
    env = new_envelope(
        consumers.LEAD_CONVERTED, "demo", converted("L8", "OPP-8"), source="leads", occurred_at=at
    )
    async with rt.db.session("demo") as session:
        await handle(env, session)
        await session.commit()
    [row] = await deals(rt)
    assert (row.expected_close_date - at.date()).days == 30
    # A CNY estimate in a EUR tenant: the deal starts at 0 EUR and keeps the estimate for the rep.
    assert (row.amount_minor, row.currency) == (0, "EUR")
    assert deal_pb2.Deal.FromString(row.body).custom_fields["lead_amount_estimate"] == "500000 CNY"


async def test_a_converted_pool_lead_goes_to_the_converting_user(rt: Runtime) -> None:
    handle = consumers.converted_handler(rt)
    evt = converted("L9", "OPP-9", owner_user_id="", actor_user_id="sup-a")
    env = new_envelope(consumers.LEAD_CONVERTED, "demo", evt, source="leads")
    async with rt.db.session("demo") as session:
        await handle(env, session)
        await session.commit()
    [row] = await deals(rt)
    assert (row.owner_user_id, row.org_path) == ("sup-a", "east/team-a")
