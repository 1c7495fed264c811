"""Who sees which lead: rep -> own leads and the pools; supervisor -> team; director -> region; admin -> all."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.errors import NotFound, PermissionDenied
from services.leads.store import LeadRow

MANAGERS = ("supervisor", "director", "admin")


def sees_all(who: Principal) -> bool:
    return who.is_admin or who.is_service


def manages(who: Principal, team_path: str) -> bool:
    if sees_all(who):
        return True
    return bool(team_path) and who.has_role("supervisor", "director") and who.org_contains(team_path)


def can_view(who: Principal, row: LeadRow) -> bool:
    if sees_all(who) or (row.owner_user_id and row.owner_user_id == who.user_id):
        return True
    if row.status == "IN_POOL":
        return True
    return manages(who, row.team_path)


def visible(who: Principal) -> ColumnElement[bool]:
    """SQL filter of the leads `who` may list."""
    if sees_all(who):
        return true()
    clauses: list[ColumnElement[bool]] = [LeadRow.owner_user_id == who.user_id, LeadRow.status == "IN_POOL"]
    org = who.org.strip("/")
    if who.has_role("supervisor", "director") and org:
        clauses += [LeadRow.team_path == org, LeadRow.team_path.startswith(org + "/")]
    return or_(*clauses)


async def load(session: AsyncSession, lead_id: str, *, for_update: bool = False) -> LeadRow:
    stmt: Any = select(LeadRow).where(LeadRow.lead_id == lead_id)
    if for_update:
        stmt = stmt.with_for_update()
    row: LeadRow | None = (await session.execute(stmt)).scalar_one_or_none()
    if row is None:
        # Another tenant's lead is simply not there: the session is tenant-scoped.
        raise NotFound("lead", lead_id)
    return row


async def load_visible(
    session: AsyncSession, who: Principal, lead_id: str, *, for_update: bool = False
) -> LeadRow:
    row = await load(session, lead_id, for_update=for_update)
    if not can_view(who, row):
        raise PermissionDenied(f"lead {lead_id} is outside your scope", reason="LEAD_OUT_OF_SCOPE")
    return row


def require_owner_or_manager(who: Principal, row: LeadRow) -> None:
    if row.owner_user_id == who.user_id or manages(who, row.team_path):
        return
    raise PermissionDenied("only the owner or a manager of the lead may do this", reason="NOT_OWNER")
