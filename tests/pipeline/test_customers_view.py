"""The single customer view: leads' events (through the pipeline-leads consumer's handler) create or
match the customer and feed its leads, follow-ups and tags; finance facts give paid / invoiced /
overdue; deals, leads and facts are limited to the caller's scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import grpc

from kit.events import new_envelope
from salesops.common.v1.types_pb2 import Money
from salesops.leads.v1 import enums_pb2, lead_pb2
from salesops.leads.v1 import events_pb2 as lead_events
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import reconciliation_pb2 as R
from services.pipeline import consumers
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import refused
from tests.pipeline.test_reconciliation import fact, ingest, stamp


def converted(
    lead_id: str, deal_id: str, company: str, contact: str, owner: str, note: str = ""
) -> lead_events.LeadConverted:
    return lead_events.LeadConverted(
        lead=lead_events.LeadContext(lead_id=lead_id, display_name=f"{company} / {contact}"),
        opportunity_id=deal_id,
        opportunity_name=f"{company} rollout",
        owner_user_id=owner,
        actor_user_id=owner,
        team_path="east/team-a",
        company=lead_pb2.LeadCompany(name=company, industry="mfg", city="Shanghai"),
        contact_name=contact,
        contact_job_title="CIO",
        amount_estimate=Money(amount_minor=1_000_000, currency="CNY"),
        source_code="expo-2026",
        note=note,
    )


def activity(activity_id: str, lead_id: str, kind: int, hours_ago: int) -> lead_events.ActivityLogged:
    return lead_events.ActivityLogged(
        lead=lead_events.LeadContext(lead_id=lead_id),
        activity_id=activity_id,
        activity_type=kind,  # type: ignore[arg-type]
        actor_user_id="rep-a1",
        occur_time=stamp(datetime.now(UTC) - timedelta(hours=hours_ago)),
    )


async def deliver(p: Pipeline, event_type: str, evt: object, tenant: str = "demo") -> None:
    """One delivery through the pipeline-leads consumer's handler, committed like the consumer does."""
    handler = consumers.converted_handler(SimpleNamespace(db=p.db))  # type: ignore[arg-type]
    env = new_envelope(event_type, tenant, evt, source="leads", subject="x")  # type: ignore[arg-type]
    async with p.db.session(tenant) as session:
        await handler(env, session)
        await session.commit()


async def test_conversions_match_one_customer_and_the_view_composes_it_by_scope(pipeline: Pipeline) -> None:
    note = "They are comparing us with a competitor and asked for a discount."
    first = converted("L1", "OPP-1", "ACME Trading Co., Ltd.", "Zhang Wei", "rep-a1", note)
    await deliver(pipeline, consumers.LEAD_CONVERTED, first)
    await deliver(pipeline, consumers.LEAD_CONVERTED, first)  # redelivered: nothing new
    await deliver(
        pipeline,
        consumers.LEAD_CONVERTED,
        converted("L2", "OPP-2", "acme trading limited", "Li Na", "rep-a2"),
    )
    await deliver(
        pipeline, consumers.LEAD_CONVERTED, converted("L3", "OPP-3", "Other Firm", "Wang", "rep-a1")
    )
    call = enums_pb2.ACTIVITY_TYPE_CALL
    for evt in (
        activity("A1", "L1", call, 5),
        activity("A1", "L1", call, 5),
        activity("A2", "L2", call, 3),
        activity("A3", "L1", call, 1),
    ):
        await deliver(pipeline, consumers.ACTIVITY_LOGGED, evt)

    listed = await pipeline.call(
        "ListCustomers", pb.ListCustomersRequest(filter=pb.CustomerFilter(query="acme"))
    )
    assert len(listed.customers) == 1
    acme = listed.customers[0]
    assert acme.owner_user_id == "rep-a1" and acme.org_path == "east/team-a"
    assert sorted(acme.lead_ids) == ["L1", "L2"]
    assert sorted(c.name for c in acme.contacts) == ["Li Na", "Zhang Wei"]
    deals = await pipeline.call(
        "ListDeals", pb.ListDealsRequest(filter=pb.DealFilter(customer_id=acme.customer_id))
    )
    assert sorted(d.deal_id for d in deals.deals) == ["OPP-1", "OPP-2"]
    assert all(d.customer.customer_id == acme.customer_id for d in deals.deals)

    # Finance: a contract due 10 days ago (past the 7-day grace), part paid, invoiced in full.
    signed = datetime.now(UTC) - timedelta(days=40)
    due = (datetime.now(UTC) - timedelta(days=10)).date()
    from google.type import date_pb2  # type: ignore[import-untyped]

    await ingest(
        pipeline,
        fact("HT-1", R.FINANCE_FACT_KIND_CONTRACT_SIGNED, 1_000_000, deal_id="OPP-1", occur_time=stamp(signed),
             payment_due_date=date_pb2.Date(year=due.year, month=due.month, day=due.day)),
        fact("PAY-1", R.FINANCE_FACT_KIND_PAYMENT_RECEIVED, 400_000, deal_id="OPP-1"),
        fact("INV-1", R.FINANCE_FACT_KIND_INVOICE_ISSUED, 1_000_000, deal_id="OPP-1"),
        fact("PAY-2", R.FINANCE_FACT_KIND_PAYMENT_RECEIVED, 5_000, deal_id="OPP-2"),
    )  # fmt: skip

    view_req = pb.GetCustomerViewRequest(customer_id=acme.customer_id)
    mine = (await pipeline.call("GetCustomerView", view_req, user="rep-a1")).view
    assert [d.deal.deal_id for d in mine.deals] == ["OPP-1"]  # OPP-2 is rep-a2's
    assert [c.field for c in mine.deals[0].changes] and mine.deals[0].deal.stage_id
    assert [lead.lead_id for lead in mine.leads] == ["L1"]
    assert mine.leads[0].deal_id == "OPP-1" and mine.leads[0].source_code == "expo-2026"
    assert [f.activity_id for f in mine.follow_ups] == ["A3", "A1"]  # newest first, A1 once
    fin = mine.finance
    assert (
        fin.contracted_amount.amount_minor,
        fin.paid_amount.amount_minor,
        fin.invoiced_amount.amount_minor,
    ) == (
        1_000_000,
        400_000,
        1_000_000,
    )
    assert fin.overdue_amount.amount_minor == 600_000
    assert sorted(f.external_id for f in mine.finance_facts) == ["HT-1", "INV-1", "PAY-1"]
    assert {i.kind for i in mine.open_issues} == {
        R.RECONCILIATION_ISSUE_KIND_SIGNED_NOT_PAID,
        R.RECONCILIATION_ISSUE_KIND_FACT_ON_OPEN_DEAL,
    }
    assert {t.tag for t in mine.tags} == {"price_sensitive", "comparing_competitors"}
    assert all(t.count == 1 for t in mine.tags)  # the redelivered conversion counted once

    # The supervisor sees the team's two deals, both leads, and every fact.
    team = (await pipeline.call("GetCustomerView", view_req, user="sup-a")).view
    assert sorted(d.deal.deal_id for d in team.deals) == ["OPP-1", "OPP-2"]
    assert sorted(lead.lead_id for lead in team.leads) == ["L1", "L2"]
    assert team.finance.paid_amount.amount_minor == 405_000
    # Another team's rep, and another tenant: NOT_FOUND.
    await refused(pipeline.call("GetCustomerView", view_req, user="rep-b1"), grpc.StatusCode.NOT_FOUND)
    await refused(
        pipeline.call("GetCustomerView", view_req, user="admin", tenant="acme"), grpc.StatusCode.NOT_FOUND
    )
