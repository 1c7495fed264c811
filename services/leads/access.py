"""Who may see and change which lead, as pure checks: rep -> own leads and the pools; supervisor -> team;
director -> region; admin and partner systems -> all. Phones are masked for everyone but the owner's line.

The SQL twins of these rules (for lists) are in repositories/leads.py.
"""

from __future__ import annotations

from typing import Protocol

from kit.auth import Principal
from kit.errors import PermissionDenied
from services.leads.domain import status


class Owned(Protocol):
    """What the phone rule reads of a lead: a LeadRow, or a read's view of one (repositories/lead_reads)."""

    @property
    def owner_user_id(self) -> str | None: ...

    @property
    def team_path(self) -> str: ...


class Scoped(Owned, Protocol):
    """What the visibility rule reads of a lead."""

    @property
    def status(self) -> str: ...


MANAGERS = ("supervisor", "director", "admin")
IMPORTERS = ("admin", "service", "partner")  # sales-ops admins and partner systems: bulk intake is theirs


def sees_all(who: Principal) -> bool:
    # Partner tokens act tenant-wide within their scopes (docs/security.md): the scope gate authorises.
    return who.acts_tenant_wide


def manages(who: Principal, team_path: str) -> bool:
    if sees_all(who):
        return True
    return bool(team_path) and who.has_role("supervisor", "director") and who.org_contains(team_path)


def in_scope(who: Principal, team_path: str) -> bool:
    """Org scope for reading people data (rep profiles): your own unit and below, admins everything."""
    return sees_all(who) or (bool(team_path) and who.org_contains(team_path))


def can_view(who: Principal, row: Scoped) -> bool:
    if sees_all(who) or (row.owner_user_id and row.owner_user_id == who.user_id):
        return True
    if row.status == status.IN_POOL:
        return True
    return manages(who, row.team_path)


def owns_or_manages(who: Principal, row: Owned) -> bool:
    return bool(row.owner_user_id and row.owner_user_id == who.user_id) or manages(who, row.team_path)


def require_owner_or_manager(who: Principal, row: Owned) -> None:
    if owns_or_manages(who, row):
        return
    raise PermissionDenied("only the owner or a manager of the lead may do this", reason="NOT_OWNER")


def can_see_phone(who: Principal | None, row: Owned) -> bool:
    """Owner, or the owner's management line (supervisor/director over the team), or admin/service."""
    if who is None or sees_all(who):
        return True
    if row.owner_user_id and row.owner_user_id == who.user_id:
        return True
    if who.has_role("supervisor", "director") and row.owner_user_id and row.team_path:
        return who.org_contains(row.team_path)
    return False
