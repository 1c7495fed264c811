"""Tables of the pipeline service: approval flows (every version), and the approvals' list projection.

The running approval lives in its Temporal workflow (the source of truth); these rows are what
lists, queues and gates read, written by the workflow's activities (never by the gRPC layer), each
write guarded by the workflow's sequence number so a retried or late activity never goes back.
They register on the service's one metadata (`store.Base`); `store` imports this module at its end.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import TenantScoped
from services.pipeline.store import Base

TS = DateTime(timezone=True)


class ApprovalFlowRow(TenantScoped, Base):
    """One version of a flow definition; `current` marks the newest (running approvals keep theirs)."""

    __tablename__ = "approval_flows"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "flow_id", "version"),
        Index("ix_approval_flows_tenant_current", "tenant_id", "current", "kind"),
    )

    flow_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    kind: Mapped[str] = mapped_column(String(32))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(128))
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the ApprovalFlow proto of this version


class ApprovalRow(TenantScoped, Base):
    """An approval as its workflow last reported it (the Approval proto, and the columns lists filter on)."""

    __tablename__ = "approvals"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "approval_id"),
        Index("ix_approvals_tenant_deal_flow", "tenant_id", "deal_id", "flow_id"),
        Index("ix_approvals_tenant_submit", "tenant_id", "submit_time"),
    )

    approval_id: Mapped[str] = mapped_column(String(64))
    flow_id: Mapped[str] = mapped_column(String(64))
    flow_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    deal_id: Mapped[str] = mapped_column(String(64), default="")
    deal_owner_user_id: Mapped[str] = mapped_column(String(128), default="")
    org_path: Mapped[str] = mapped_column(String(200), default="")
    requester_user_id: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    seq: Mapped[int] = mapped_column(
        BigInteger, default=0
    )  # the workflow's change counter: writes only go up
    submit_time: Mapped[datetime] = mapped_column(TS)
    complete_time: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class ApprovalAssignmentRow(TenantScoped, Base):
    """Who is or was asked to act on a step (the queue: `active`; the filter "was an assignee": all)."""

    __tablename__ = "approval_assignments"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "approval_id", "step_key", "user_id"),
        Index("ix_approval_assignments_tenant_user_active", "tenant_id", "user_id", "active", "since"),
    )

    approval_id: Mapped[str] = mapped_column(String(64))
    step_key: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    since: Mapped[datetime] = mapped_column(TS)
    due_time: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    indirect: Mapped[bool] = mapped_column(Boolean, default=False)  # by escalation, delegation or fallback


class ApprovalActionRow(TenantScoped, Base):
    """The audit trail: one row per action (who, when, what, from which client), numbered by the workflow."""

    __tablename__ = "approval_actions"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "approval_id", "seq"),)

    approval_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    action_type: Mapped[str] = mapped_column(String(16))
    step_key: Mapped[str] = mapped_column(String(64), default="")
    actor_user_id: Mapped[str] = mapped_column(String(128))
    client: Mapped[str] = mapped_column(String(200), default="")
    action_time: Mapped[datetime] = mapped_column(TS)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the ApprovalActionRecord proto


class ApprovalDelegationRow(TenantScoped, Base):
    """A standing delegation (leave): steps opening for `user_id` in [start, end) go to the delegate."""

    __tablename__ = "approval_delegations"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "delegation_id"),
        Index("ix_approval_delegations_tenant_user", "tenant_id", "user_id", "start_time"),
    )

    delegation_id: Mapped[str] = mapped_column(String(26))
    user_id: Mapped[str] = mapped_column(String(128))
    delegate_user_id: Mapped[str] = mapped_column(String(128))
    start_time: Mapped[datetime] = mapped_column(TS)
    end_time: Mapped[datetime] = mapped_column(TS)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(128))


class ApprovalClaimRow(TenantScoped, Base):
    """Which approval holds a (deal, flow) pair: the primary key lets one of two concurrent
    CreateApproval calls (different ids, same deal and flow) start; the other is ALREADY_EXISTS.
    Taken over once its holder's approval is final (or never started: see approvals.claim)."""

    __tablename__ = "approval_claims"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "deal_id", "flow_id"),)

    deal_id: Mapped[str] = mapped_column(String(64))
    flow_id: Mapped[str] = mapped_column(String(64))
    approval_id: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime] = mapped_column(TS)


__all__ = [
    "ApprovalActionRow",
    "ApprovalAssignmentRow",
    "ApprovalClaimRow",
    "ApprovalDelegationRow",
    "ApprovalFlowRow",
    "ApprovalRow",
]
