"""Tables of the pipeline service: customers, contacts, finance facts and reconciliation issues.

They register on the service's one metadata (`store.Base`), so migrations and
the runtime see them; `store` imports this module at its end.

Customers dedupe in the database: the normalised company name and every
contact key (normalised phone / e-mail) are unique per tenant. The leads
projection (`customer_leads`, `lead_follow_ups`) and the keyword tags are fed
by leads' events only: pipeline never reads another service's tables.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import TenantScoped
from services.pipeline.store import TS, Base


class CustomerRow(TenantScoped, Base):
    __tablename__ = "customers"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "customer_id"),
        # The dedupe key: two accounts never share a normalised company name.
        UniqueConstraint("tenant_id", "normalized_name"),
        Index("ix_customers_tenant_updated", "tenant_id", "updated_at"),
        Index("ix_customers_tenant_org", "tenant_id", "org_path"),
    )

    customer_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(300))
    normalized_name: Mapped[str] = mapped_column(String(300))
    industry: Mapped[str] = mapped_column(String(64), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    owner_user_id: Mapped[str] = mapped_column(String(128))
    org_path: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(TS)
    updated_by: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer, default=1)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the Customer proto (contacts included)


class ContactKeyRow(TenantScoped, Base):
    """One row per contact key ("phone:+86...", "email:a@b.cn"): a key names one customer."""

    __tablename__ = "customer_contact_keys"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "contact_key"),
        Index("ix_customer_contact_keys_tenant_customer", "tenant_id", "customer_id"),
    )

    contact_key: Mapped[str] = mapped_column(String(300))
    customer_id: Mapped[str] = mapped_column(String(64))


class CustomerLeadRow(TenantScoped, Base):
    """A converted lead as leads.LeadConverted described it (the projection behind the view)."""

    __tablename__ = "customer_leads"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "lead_id"),
        Index("ix_customer_leads_tenant_customer", "tenant_id", "customer_id"),
    )

    lead_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(64))
    deal_id: Mapped[str] = mapped_column(String(64), default="")
    display_name: Mapped[str] = mapped_column(String(300), default="")
    owner_user_id: Mapped[str] = mapped_column(String(128), default="")
    source_code: Mapped[str] = mapped_column(String(64), default="")
    lead_created_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    converted_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)


class LeadFollowUpRow(TenantScoped, Base):
    """A follow-up on a lead (leads.ActivityLogged), kept whether or not the lead converted yet."""

    __tablename__ = "lead_follow_ups"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "activity_id"),
        Index("ix_lead_follow_ups_tenant_lead", "tenant_id", "lead_id", "occurred_at"),
    )

    activity_id: Mapped[str] = mapped_column(String(64))
    lead_id: Mapped[str] = mapped_column(String(64))
    activity_type: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(64), default="")
    outcome: Mapped[str] = mapped_column(String(64), default="")
    actor_user_id: Mapped[str] = mapped_column(String(128), default="")
    occurred_at: Mapped[datetime] = mapped_column(TS)
    next_step_due: Mapped[date | None] = mapped_column(Date, nullable=True)


class CustomerTagRow(TenantScoped, Base):
    __tablename__ = "customer_tags"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "customer_id", "tag"),)

    customer_id: Mapped[str] = mapped_column(String(64))
    tag: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(String(64), default="")
    last_seen_at: Mapped[datetime] = mapped_column(TS)


class FinanceFactRow(TenantScoped, Base):
    __tablename__ = "finance_facts"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "fact_id"),
        # The contract's upsert key: webhook and sync may both deliver one record.
        UniqueConstraint("tenant_id", "source_system", "external_id"),
        Index("ix_finance_facts_tenant_deal", "tenant_id", "deal_id", "kind"),
        Index("ix_finance_facts_tenant_occurred", "tenant_id", "occurred_at"),
    )

    fact_id: Mapped[str] = mapped_column(String(26))
    kind: Mapped[str] = mapped_column(String(32))
    source_system: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(128))
    contract_external_id: Mapped[str] = mapped_column(String(128), default="")
    deal_id: Mapped[str] = mapped_column(String(64), default="")  # "" = unmatched
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(TS)
    source_updated_at: Mapped[datetime] = mapped_column(TS)
    ingested_at: Mapped[datetime] = mapped_column(TS)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the FinanceFact proto as given


class ReconciliationIssueRow(TenantScoped, Base):
    __tablename__ = "reconciliation_issues"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "issue_id"),
        # One open issue per kind and deal (or fact): "<kind>/<deal or fact>", NULL once closed.
        UniqueConstraint("tenant_id", "open_key"),
        Index("ix_reconciliation_issues_tenant_state", "tenant_id", "state", "detected_at"),
        Index("ix_reconciliation_issues_tenant_deal", "tenant_id", "deal_id"),
    )

    issue_id: Mapped[str] = mapped_column(String(26))
    kind: Mapped[str] = mapped_column(String(48))
    state: Mapped[str] = mapped_column(String(16))
    resolution: Mapped[str] = mapped_column(String(32), default="")
    open_key: Mapped[str | None] = mapped_column(String(120), nullable=True)
    deal_id: Mapped[str] = mapped_column(String(64), default="")
    owner_user_id: Mapped[str] = mapped_column(String(128), default="")
    org_path: Mapped[str] = mapped_column(String(200), default="")
    difference_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    detected_at: Mapped[datetime] = mapped_column(TS)
    resolved_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the ReconciliationIssue proto
