"""The single customer view: one account composed from what pipeline holds and what the owning
services told it (leads' events: converted leads, follow-ups; finance facts; tags). Never reads
another service's tables. Deals, their facts and issues are limited to the caller's scope.
"""

from __future__ import annotations

from datetime import date, datetime

from kit.auth import Principal
from kit.resources import UnitOfWork
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import customer_pb2
from services.pipeline import access, reconciliation
from services.pipeline.convert import aware, date_proto, ts
from services.pipeline.domain import reconciliation as rules
from services.pipeline.presenters import CHANGES, CUSTOMERS, DEALS, FACTS, ISSUES, CustomerItem, DealView
from services.pipeline.repositories.customers import VIEW_LIMIT, CustomerActivity, CustomerDeals, Customers
from services.pipeline.repositories.finance import FinanceFacts, ReconciliationIssues
from services.pipeline.store_customers import FinanceFactRow

MAX_FACTS_TOTALLED = 5000  # facts read to compute what is overdue; totals themselves are summed in SQL


async def customer_view(
    uow: UnitOfWork, who: Principal, customer_id: str, at: datetime
) -> customer_pb2.CustomerView:
    row = await Customers(uow).visible(who, customer_id)
    activity = CustomerActivity(uow)
    leads = await activity.leads_of(customer_id)
    view = customer_pb2.CustomerView(
        customer=CUSTOMERS.present(who, CustomerItem(row, tuple(await activity.lead_ids(customer_id))))
    )
    deal_repo = CustomerDeals(uow)
    deals = await deal_repo.visible_of(who, customer_id)
    changes = await deal_repo.changes_of([d.deal_id for d in deals])
    for d in deals:
        item = view.deals.add(deal=DEALS.present(who, DealView(d, full=True)))
        item.changes.extend(CHANGES.present(who, c) for c in changes[d.deal_id])
    # Leads and their follow-ups as far as their deals are visible (or the caller owned the lead).
    visible_ids = {d.deal_id for d in deals}
    leads = [x for x in leads if x.deal_id in visible_ids or x.owner_user_id == who.user_id]
    for lead in leads:
        view.leads.add(
            lead_id=lead.lead_id,
            display_name=lead.display_name,
            deal_id=lead.deal_id,
            owner_user_id=lead.owner_user_id,
            source_code=lead.source_code,
            lead_create_time=ts(lead.lead_created_at),
            convert_time=ts(lead.converted_at),
        )
    for f in await activity.follow_ups_of([x.lead_id for x in leads]):
        up = view.follow_ups.add(
            activity_id=f.activity_id,
            lead_id=f.lead_id,
            activity_type=f.activity_type,
            state=f.state,
            outcome=f.outcome,
            actor_user_id=f.actor_user_id,
            occur_time=ts(f.occurred_at),
        )
        if f.next_step_due is not None:
            up.next_step_due_date.CopyFrom(date_proto(f.next_step_due))
    deal_ids = [d.deal_id for d in deals]
    currency = deals[0].currency if deals else ""
    facts = FinanceFacts(uow)
    sums = await facts.sums_by_kind(deal_ids)
    all_facts = await facts.of_deals(deal_ids, MAX_FACTS_TOTALLED)
    overdue = _overdue(all_facts, await reconciliation.policy(uow), at.date())
    view.finance.CopyFrom(
        customer_pb2.CustomerFinance(
            contracted_amount=Money(amount_minor=sums.get(rules.CONTRACT, 0), currency=currency),
            invoiced_amount=Money(amount_minor=sums.get(rules.INVOICE, 0), currency=currency),
            paid_amount=Money(amount_minor=sums.get(rules.PAYMENT, 0), currency=currency),
            overdue_amount=Money(amount_minor=overdue, currency=currency),
        )
    )
    view.finance_facts.extend(FACTS.present(who, f) for f in all_facts[:VIEW_LIMIT])
    # An issue follows its deal's scope; one raised before a reassignment shows to whom it names.
    open_issues = await ReconciliationIssues(uow).open_of_deals(deal_ids)
    view.open_issues.extend(
        ISSUES.present(who, i) for i in open_issues if access.can_view(who, i.owner_user_id, i.org_path)
    )
    for tag in await activity.tags_of(customer_id):
        view.tags.add(tag=tag.tag, count=tag.count, source=tag.source, last_seen_time=ts(tag.last_seen_at))
    return view


def _overdue(rows: list[FinanceFactRow], policy: rules.Policy, today: date) -> int:
    """Per deal: what its contracts still await once their payment due date has passed."""
    by_deal: dict[str, list[rules.Fact]] = {}
    for r in rows:
        by_deal.setdefault(r.deal_id, []).append(
            rules.Fact(r.fact_id, r.kind, r.amount_minor, aware(r.occurred_at), r.due_date)
        )
    total = 0
    for facts in by_deal.values():
        t = rules.totals(facts, policy)
        if t.due is not None and t.due < today and t.paid < t.contracted:
            total += t.contracted - t.paid
    return total
