"""Approval flows, the approvals' projection, assignments, audit rows and standing delegations: all SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, exists, func, insert, or_, select, true, update

from kit.auth import Principal
from kit.resources import Page, PageRequest, Repository, Sort, contains
from services.pipeline import access
from services.pipeline.convert import aware
from services.pipeline.repositories.deals import in_org
from services.pipeline.store import MemberProfileRow
from services.pipeline.store_approvals import (
    ApprovalActionRow,
    ApprovalAssignmentRow,
    ApprovalClaimRow,
    ApprovalDelegationRow,
    ApprovalFlowRow,
    ApprovalRow,
)


class ApprovalFlows(Repository[ApprovalFlowRow]):
    model = ApprovalFlowRow
    resource = "pipeline.ApprovalFlow"
    key = ("flow_id", "version")

    async def current(self, flow_id: str, *, for_update: bool = False) -> ApprovalFlowRow | None:
        stmt = select(ApprovalFlowRow).where(
            ApprovalFlowRow.flow_id == flow_id, ApprovalFlowRow.current.is_(True)
        )
        if for_update:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)  # type: ignore[no-any-return]

    async def retire(self, flow_id: str) -> None:
        await self.session.execute(
            update(ApprovalFlowRow)
            .where(ApprovalFlowRow.flow_id == flow_id, ApprovalFlowRow.current.is_(True))
            .values(current=False)
        )

    async def page(
        self, kind: str, include_disabled: bool, page: PageRequest, query: str
    ) -> Page[ApprovalFlowRow]:
        where: list[ColumnElement[bool]] = [ApprovalFlowRow.current.is_(True)]
        if kind:
            where.append(ApprovalFlowRow.kind == kind)
        if not include_disabled:
            where.append(ApprovalFlowRow.disabled.is_(False))
        return await self.list(where, [Sort(ApprovalFlowRow.flow_id)], page, query)

    async def current_bodies(self, flow_ids: Sequence[str]) -> dict[str, bytes]:
        """Flow id -> the current version's ApprovalFlow (what a gate reads the flow's trigger from)."""
        stmt = select(ApprovalFlowRow.flow_id, ApprovalFlowRow.body).where(
            ApprovalFlowRow.flow_id.in_(sorted(flow_ids)), ApprovalFlowRow.current.is_(True)
        )
        return {flow_id: body for flow_id, body in (await self.session.execute(stmt)).all()}

    async def enabled_of_kind(self, kind: str) -> list[ApprovalFlowRow]:
        stmt = (
            select(ApprovalFlowRow)
            .where(
                ApprovalFlowRow.current.is_(True),
                ApprovalFlowRow.disabled.is_(False),
                ApprovalFlowRow.kind == kind,
            )
            .order_by(ApprovalFlowRow.priority.desc(), ApprovalFlowRow.flow_id)
        )
        return list(await self.session.scalars(stmt))


def approvals_visible_to(who: Principal) -> ColumnElement[bool]:
    """Admins: all; others: what they requested, what waits or waited on them, and their org's (managers)."""
    if access.sees_all(who):
        return true()
    assigned = exists().where(
        ApprovalAssignmentRow.tenant_id == ApprovalRow.tenant_id,
        ApprovalAssignmentRow.approval_id == ApprovalRow.approval_id,
        ApprovalAssignmentRow.user_id == who.user_id,
    )
    mine = or_(
        ApprovalRow.requester_user_id == who.user_id, ApprovalRow.deal_owner_user_id == who.user_id, assigned
    )
    org = who.org.strip("/")
    if org and who.has_role(*access.MANAGERS):
        return or_(mine, in_org(ApprovalRow.org_path, org))
    return mine


class Approvals(Repository[ApprovalRow]):
    model = ApprovalRow
    resource = "pipeline.Approval"
    key = ("approval_id",)

    async def insert_new(
        self, approval: dict[str, Any], assignments: list[dict[str, Any]], actions: list[dict[str, Any]]
    ) -> None:
        """A new approval's projection: one Core INSERT per table on the session's connection (no ORM
        objects to build and flush); every row of this unit's tenant. A row already there fails the key."""
        conn = await self.session.connection()
        tenant = {"tenant_id": self.uow.tenant}
        await conn.execute(insert(_APPROVALS), [approval | tenant])
        for table, rows in ((_ASSIGNMENTS, assignments), (_ACTIONS, actions)):
            if rows:
                await conn.execute(insert(table), [r | tenant for r in rows])

    async def progress(self, approval_id: str) -> tuple[int, bytes] | None:
        """The stored sequence number and document, no row object built (what a projection write compares)."""
        got = (await self.session.execute(_PROGRESS, {"approval_id": approval_id})).first()
        return None if got is None else (got[0], got[1])

    async def assignment_values(self, approval_id: str) -> dict[tuple[str, str], dict[str, Any]]:
        """(step key, user) -> the stored active, since, due_time and indirect (times in UTC), no row objects."""
        rows = await self.session.execute(_ASSIGNMENT_VALUES, {"approval_id": approval_id})
        return {
            (step, user): {
                "active": active,
                "since": _utc(since),
                "due_time": _utc(due),
                "indirect": indirect,
            }
            for step, user, active, since, due, indirect in rows
        }

    async def write_progress(
        self,
        approval_id: str,
        approval: dict[str, Any],
        changed: dict[tuple[str, str], dict[str, Any]],
        added: list[dict[str, Any]],
        actions: list[dict[str, Any]],
    ) -> bool:
        """A projection brought forward as Core statements on the session's connection (no ORM objects to
        load, track and flush): the approval's columns, the changed assignments (active, since, due_time,
        indirect), the new assignments and action rows; every statement of this unit's tenant. False
        (nothing written): the stored projection had reached `approval["seq"]` meanwhile (a stale retry
        racing a newer write: the sequence read before is not locked)."""
        conn = await self.session.connection()
        tenant = {"tenant_id": self.uow.tenant}
        key = {"w_tenant": self.uow.tenant, "w_approval": approval_id, "w_seq": approval["seq"]}
        done = await conn.execute(_SET_APPROVAL, approval | key)  # SET: the parameters named as columns
        if done.rowcount == 0:
            return False
        if changed:
            rows = [v | key | {"w_step": step, "w_user": user} for (step, user), v in changed.items()]
            await conn.execute(_SET_ASSIGNMENT, rows)
        for table, new in ((_ASSIGNMENTS, added), (_ACTIONS, actions)):
            if new:
                await conn.execute(insert(table), [r | tenant for r in new])
        return True

    async def sees(self, who: Principal, approval_id: str) -> bool:
        """Whether `who` sees the approval, in one statement (no row or assignments loaded)."""
        stmt = select(ApprovalRow.approval_id).where(
            ApprovalRow.approval_id == approval_id, approvals_visible_to(who)
        )
        return await self.session.scalar(stmt) is not None

    async def body(self, approval_id: str) -> bytes | None:
        """The stored document alone (no row object built)."""
        stmt = select(ApprovalRow.body).where(ApprovalRow.approval_id == approval_id)
        return await self.session.scalar(stmt)  # type: ignore[no-any-return]

    async def running_for(self, deal_id: str, flow_id: str) -> ApprovalRow | None:
        stmt = select(ApprovalRow).where(
            ApprovalRow.deal_id == deal_id,
            ApprovalRow.flow_id == flow_id,
            ApprovalRow.state.in_(("IN_PROGRESS", "RETURNED")),
        )
        return await self.session.scalar(stmt.limit(1))  # type: ignore[no-any-return]

    async def running_of_deal(self, deal_id: str) -> list[str]:
        stmt = select(ApprovalRow.approval_id).where(
            ApprovalRow.deal_id == deal_id, ApprovalRow.state.in_(("IN_PROGRESS", "RETURNED"))
        )
        return list(await self.session.scalars(stmt))

    async def unprojected_claims_of_deal(self, deal_id: str) -> list[tuple[str, datetime]]:
        """(approval id, claimed at) of the deal's claims whose approval has no projection yet: a start
        in flight (or one that never happened), which a closing deal's cancel must not miss."""
        projected = exists().where(
            ApprovalRow.tenant_id == ApprovalClaimRow.tenant_id,
            ApprovalRow.approval_id == ApprovalClaimRow.approval_id,
        )
        stmt = select(ApprovalClaimRow.approval_id, ApprovalClaimRow.claimed_at).where(
            ApprovalClaimRow.deal_id == deal_id, ~projected
        )
        return [(a, t) for a, t in (await self.session.execute(stmt)).all()]

    async def latest_states(self, deal_id: str) -> dict[str, str]:
        """Flow id -> the state of the deal's latest approval of it (what a gate looks at)."""
        stmt = (
            select(ApprovalRow.flow_id, ApprovalRow.state)
            .where(ApprovalRow.deal_id == deal_id)
            .order_by(ApprovalRow.submit_time, ApprovalRow.approval_id)
        )
        return {flow: state for flow, state in (await self.session.execute(stmt)).all()}

    async def page(
        self,
        who: Principal,
        where: Sequence[ColumnElement[bool]],
        assignee: str,
        ascending: bool,
        page: PageRequest,
        query: str,
    ) -> Page[ApprovalRow]:
        conds = [approvals_visible_to(who), *where]
        if assignee:
            conds.append(
                exists().where(
                    ApprovalAssignmentRow.tenant_id == ApprovalRow.tenant_id,
                    ApprovalAssignmentRow.approval_id == ApprovalRow.approval_id,
                    ApprovalAssignmentRow.user_id == assignee,
                )
            )
        order = [Sort(ApprovalRow.submit_time, descending=not ascending)]
        return await self.list(conds, order, page, query, count=True)

    async def pending_for(self, user_id: str, kind: str, page: PageRequest, query: str) -> Page[ApprovalRow]:
        """Approvals with an active step waiting on `user_id`, the oldest waiting first."""
        since = (
            select(func.min(ApprovalAssignmentRow.since))
            .where(
                ApprovalAssignmentRow.tenant_id == ApprovalRow.tenant_id,
                ApprovalAssignmentRow.approval_id == ApprovalRow.approval_id,
                ApprovalAssignmentRow.user_id == user_id,
                ApprovalAssignmentRow.active.is_(True),
            )
            .scalar_subquery()
        )
        where: list[ColumnElement[bool]] = [ApprovalRow.state == "IN_PROGRESS", since.is_not(None)]
        if kind:
            where.append(ApprovalRow.kind == kind)
        stmt = select(ApprovalRow).where(*where)
        total = int(
            await self.session.scalar(select(func.count()).select_from(ApprovalRow).where(*where)) or 0
        )
        return await self.paginate(stmt, [Sort(ApprovalRow.submit_time)], page, query, total=total)

    async def active_assignments(
        self, approval_ids: Sequence[str], user_id: str
    ) -> dict[str, list[ApprovalAssignmentRow]]:
        """Approval id -> the caller's active assignments (one query for a page of the queue)."""
        out: dict[str, list[ApprovalAssignmentRow]] = {a: [] for a in approval_ids}
        if not approval_ids:
            return out
        stmt = select(ApprovalAssignmentRow).where(
            ApprovalAssignmentRow.approval_id.in_(list(approval_ids)),
            ApprovalAssignmentRow.user_id == user_id,
            ApprovalAssignmentRow.active.is_(True),
        )
        for row in await self.session.scalars(stmt):
            out[row.approval_id].append(row)
        return out

    async def all_assignments(self, approval_id: str) -> list[ApprovalAssignmentRow]:
        stmt = select(ApprovalAssignmentRow).where(ApprovalAssignmentRow.approval_id == approval_id)
        return list(await self.session.scalars(stmt))

    async def actions(self, approval_id: str) -> list[ApprovalActionRow]:
        stmt = (
            select(ApprovalActionRow)
            .where(ApprovalActionRow.approval_id == approval_id)
            .order_by(ApprovalActionRow.seq)
        )
        return list(await self.session.scalars(stmt))


async def approvers_with_role(repo: Repository[ApprovalRow], role: str) -> list[str]:
    stmt = (
        select(MemberProfileRow.user_id)
        .where(
            contains(MemberProfileRow.approver_roles, f",{role},", case_sensitive=True),
            MemberProfileRow.active.is_(True),
        )
        .order_by(MemberProfileRow.user_id)
    )
    return list(await repo.session.scalars(stmt))


async def managers_of(repo: Repository[ApprovalRow], user_ids: Sequence[str]) -> dict[str, str]:
    if not user_ids:
        return {}
    stmt = select(MemberProfileRow.user_id, MemberProfileRow.manager_user_id).where(
        MemberProfileRow.user_id.in_(list(user_ids))
    )
    return {u: m for u, m in (await repo.session.execute(stmt)).all() if m}


class ApprovalDelegations(Repository[ApprovalDelegationRow]):
    model = ApprovalDelegationRow
    resource = "pipeline.ApprovalDelegation"
    key = ("delegation_id",)

    async def in_force(self, user_ids: Sequence[str], at: datetime) -> dict[str, str]:
        """User -> their delegate at `at` (the newest delegation wins when they overlap)."""
        if not user_ids:
            return {}
        rows = await self.session.execute(_IN_FORCE, {"users": list(user_ids), "at": at})
        return {user: delegate for user, delegate in rows}

    async def page(
        self, who: Principal, user_id: str, page: PageRequest, query: str
    ) -> Page[ApprovalDelegationRow]:
        where: list[ColumnElement[bool]] = []
        if user_id:
            where.append(ApprovalDelegationRow.user_id == user_id)
        if not access.sees_all(who):
            mine = ApprovalDelegationRow.user_id == who.user_id
            where.append(or_(mine, ApprovalDelegationRow.delegate_user_id == who.user_id))
        return await self.list(where, [Sort(ApprovalDelegationRow.start_time, descending=True)], page, query)


_APPROVALS: Table = ApprovalRow.__table__  # type: ignore[assignment]
_ASSIGNMENTS: Table = ApprovalAssignmentRow.__table__  # type: ignore[assignment]
_ACTIONS: Table = ApprovalActionRow.__table__  # type: ignore[assignment]

# A projection write's statements, built once (the last approve of an approval runs each of them).
_PROGRESS = select(ApprovalRow.seq, ApprovalRow.body).where(
    ApprovalRow.approval_id == bindparam("approval_id")
)
_ASSIGNMENT_VALUES = select(
    ApprovalAssignmentRow.step_key,
    ApprovalAssignmentRow.user_id,
    ApprovalAssignmentRow.active,
    ApprovalAssignmentRow.since,
    ApprovalAssignmentRow.due_time,
    ApprovalAssignmentRow.indirect,
).where(ApprovalAssignmentRow.approval_id == bindparam("approval_id"))
_SET_APPROVAL = update(_APPROVALS).where(
    _APPROVALS.c.tenant_id == bindparam("w_tenant"),
    _APPROVALS.c.approval_id == bindparam("w_approval"),
    _APPROVALS.c.seq < bindparam("w_seq"),  # compare-and-set: never a newer projection overwritten
)
_SET_ASSIGNMENT = update(_ASSIGNMENTS).where(
    _ASSIGNMENTS.c.tenant_id == bindparam("w_tenant"),
    _ASSIGNMENTS.c.approval_id == bindparam("w_approval"),
    _ASSIGNMENTS.c.step_key == bindparam("w_step"),
    _ASSIGNMENTS.c.user_id == bindparam("w_user"),
)


def _utc(at: datetime | None) -> datetime | None:
    return None if at is None else aware(at)


# Built once (every step opening runs it; building it was ~0.5 ms of a CreateApproval); the tenant
# criterion is added per execution by the session, as for any ORM statement.
_IN_FORCE = (
    select(ApprovalDelegationRow.user_id, ApprovalDelegationRow.delegate_user_id)
    .where(
        ApprovalDelegationRow.user_id.in_(bindparam("users", expanding=True)),
        ApprovalDelegationRow.start_time <= bindparam("at"),
        ApprovalDelegationRow.end_time > bindparam("at"),
    )
    .order_by(ApprovalDelegationRow.created_at)
)


class ApprovalClaims(Repository[ApprovalClaimRow]):
    """Which approval holds a deal x flow (the primary key serializes concurrent starts)."""

    model = ApprovalClaimRow
    resource = "pipeline.Approval"
    key = ("deal_id", "flow_id")

    async def take_over(
        self, deal_id: str, flow_id: str, holder: str, approval_id: str, at: datetime
    ) -> bool:
        """Compare-and-set: hand the claim from `holder` to `approval_id`; False if someone else moved it."""
        stmt = (
            update(ApprovalClaimRow)
            .where(
                ApprovalClaimRow.deal_id == deal_id,
                ApprovalClaimRow.flow_id == flow_id,
                ApprovalClaimRow.approval_id == holder,
            )
            .values(approval_id=approval_id, claimed_at=at)
        )
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]


__all__ = [
    "ApprovalClaims",
    "ApprovalDelegations",
    "ApprovalFlows",
    "Approvals",
    "approvals_visible_to",
    "approvers_with_role",
    "managers_of",
]
