"""A lead created by an intake is answered from the messages it was stored from (intake_views.shown)
instead of parsing its stored JSON (presenters.LeadPresenter.present): the same Lead, field for
field, for every kind of new lead (routed to either team, pooled, flagged, with attributes and a
budget) and every kind of viewer (admin, the owner, the owner's supervisor, another team's rep, who
sees the phone masked, a director)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from deploy.local.demo import demo_user
from kit.auth import Principal
from kit.errors import InvalidArgument
from kit.resources import UnitOfWork
from salesops.leads.v1 import enums_pb2, lead_pb2
from services.leads import intake, lead_views
from services.leads.api.intake import _candidate
from services.leads.intake_views import shown
from services.leads.presenters import LEADS
from services.leads.store import transactions
from tests.leads.conftest import Leads
from tests.leads.helpers import configure
from tests.leads.test_import_batch_matches_one_by_one import _rows

VIEWERS = ("admin", "director-east", "sup-a", "sup-b", "rep-a1", "rep-a2", "rep-b1")


def _who(user_id: str) -> Principal:
    u = demo_user(user_id)
    return Principal(u.user_id, "demo", frozenset(u.roles), u.org, datetime.now(UTC) + timedelta(hours=1))


def _more() -> list[lead_pb2.Lead]:
    rich = lead_pb2.Lead(
        lead_id="R1",
        display_name="",
        contact=lead_pb2.LeadContact(name="Wang", phone="13911112222", email="w@example.com"),
        company=lead_pb2.LeadCompany(name="Rich Data Co"),
        source=lead_pb2.LeadSource(channel=enums_pb2.LEAD_CHANNEL_WEB_FORM, source_code="expo"),
        region="east/shanghai",
        description="wants a demo",
        product_lines=["crm", "erp"],
        tags=["vip"],
    )
    rich.attributes.update({"size": 120, "notes": {"a": "b"}})
    rich.stated_budget.currency, rich.stated_budget.amount_minor = "CNY", 123_456
    phone_only = lead_pb2.Lead(
        lead_id="R2",
        contact=lead_pb2.LeadContact(phone="13911113333"),
        source=lead_pb2.LeadSource(channel=enums_pb2.LEAD_CHANNEL_PARTNER_API),
    )
    return [rich, phone_only]


async def test_new_lead_answer_from_stored_messages_is_the_presenters(leads: Leads) -> None:
    await configure(leads)
    tx = transactions(leads.db)
    creators = [_who(u) for u in ("admin", "rep-a1", "sup-b")]
    compared = masked = 0

    async def work(uow: UnitOfWork) -> None:
        nonlocal compared, masked
        for i, lead in enumerate([*_rows(), *_more()]):
            try:
                res = await intake.create(uow, creators[i % 3], lead, datetime.now(UTC))
            except InvalidArgument:  # refused rows (X1, X2) write nothing
                continue
            if res.stored is None:  # a merge or a replay: presented from its row, as before
                assert res.replayed or res.outcome == intake.MERGED
                continue
            new = [_candidate(m, res.row) for m in res.candidates]
            for viewer in map(_who, VIEWERS):
                details = await lead_views.details(uow, viewer, res.row, new_candidates=new)
                want = LEADS.present(viewer, details)
                got = shown(viewer, details, res.stored)
                assert got == want, (lead.lead_id, viewer.user_id)
                compared += 1
                masked += want.contact.phone_masked

    await tx.run("demo", work)
    assert compared > 150 and masked > 10, (compared, masked)
