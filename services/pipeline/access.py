"""Who may see and change which deal, as pure checks: rep -> own deals; supervisor -> team;
director -> region; admin and partner systems -> the tenant. A deal outside the
caller's scope answers NOT_FOUND, like one that does not exist (the contract's rule).

The SQL twin of `can_view` (for lists) is `visible_to` in repositories/deals.py.
"""

from __future__ import annotations

from kit.auth import Principal
from kit.errors import PermissionDenied

MANAGERS = ("supervisor", "director")


def sees_all(who: Principal) -> bool:
    # Partner tokens act tenant-wide within their scopes (docs/security.md): the scope gate authorises.
    return who.acts_tenant_wide


def manages(who: Principal, org_path: str) -> bool:
    """A supervisor over the team, a director over the region (org paths compared by segment)."""
    return bool(org_path) and who.has_role(*MANAGERS) and who.org_contains(org_path)


def can_view(who: Principal, owner_user_id: str, org_path: str) -> bool:
    return sees_all(who) or owner_user_id == who.user_id or manages(who, org_path)


def can_assign(who: Principal, org_path: str) -> bool:
    """Give a deal to someone else (create for, or reassign to): managers of its org and admins."""
    return sees_all(who) or manages(who, org_path)


def require_assign(who: Principal, org_path: str) -> None:
    if not can_assign(who, org_path):
        raise PermissionDenied(
            "only a manager of the deal's team or an admin may assign it", reason="NOT_MANAGER"
        )


def require_process_view(who: Principal, org_path: str) -> None:
    """Process health and its anomalies: managers over the unit (supervisor: team, director: region), admins."""
    if not (sees_all(who) or (who.has_role(*MANAGERS) and who.org_contains(org_path))):
        raise PermissionDenied(
            "process health is shown to the unit's managers and admins", reason="NOT_MANAGER"
        )


def require_admin(who: Principal) -> None:
    if not who.may_configure:  # admins, or a partner key naming this very method
        raise PermissionDenied("admin only", reason="ADMIN_ONLY")


def can_view_approval(
    who: Principal, requester: str, deal_owner: str, org_path: str, asked: set[str]
) -> bool:
    """An approval: admins; its requester and the deal's owner; whoever is or was asked to act on it (they
    see what they decide and the deal in summary, not the deal); managers over its org (the requester's
    managers). The SQL twin is `approvals_visible_to` in repositories/approvals.py."""
    return (
        sees_all(who)
        or who.user_id in (requester, deal_owner)
        or who.user_id in asked
        or manages(who, org_path)
    )
