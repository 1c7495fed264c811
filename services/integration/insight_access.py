"""Who may do what with conversation insights: decided here, once.

Reps submit conversations and read the ones they submitted; supervisors and
directors read those submitted in their org subtree and its digests; admins
manage the keyword dictionary and read everything. What a viewer may not read
does not exist for them (NOT_FOUND), like another tenant's.
"""

from __future__ import annotations

from dataclasses import dataclass

from kit.auth import Principal
from kit.errors import NotFound, PermissionDenied

MEMBERS = ("rep", "supervisor", "director", "admin", "service", "partner")
MANAGERS = ("supervisor", "director")


@dataclass(frozen=True)
class Scope:
    """Rows a viewer may read: None = no limit of that kind; both set = either one."""

    submitted_by: str | None
    org_paths: tuple[str, ...] | None

    @property
    def everything(self) -> bool:
        return self.submitted_by is None and self.org_paths is None


def require_member(who: Principal) -> None:
    if not who.has_role(*MEMBERS):
        raise PermissionDenied("conversation insights are for the sales team", reason="MEMBERS_ONLY")


def require_keyword_admin(who: Principal) -> None:
    if not who.may_configure:  # admins, or a partner key naming this very method
        raise PermissionDenied("the keyword dictionary is managed by admins", reason="ADMIN_ONLY")


def conversation_scope(who: Principal) -> Scope:
    require_member(who)
    if who.acts_tenant_wide:
        return Scope(None, None)
    if who.has_role(*MANAGERS) and who.org:
        return Scope(who.user_id, (who.org,))
    return Scope(who.user_id, ())


def may_read(who: Principal, submitted_by: str, org_path: str) -> bool:
    scope = conversation_scope(who)
    if scope.everything:
        return True
    return submitted_by == scope.submitted_by or any(
        org_path == p or who.org_contains(org_path) for p in scope.org_paths or ()
    )


def check_readable(who: Principal, conversation_id: str, submitted_by: str, org_path: str) -> None:
    if not may_read(who, submitted_by, org_path):
        raise NotFound("integration.Conversation", conversation_id)


def digest_scope(who: Principal, org_path: str) -> tuple[str, ...] | None:
    """Org subtrees whose digests the viewer reads (None = all); the tenant-wide one: admins, directors."""
    if who.acts_tenant_wide:
        return None
    if not who.has_role(*MANAGERS) or not who.org:
        raise PermissionDenied("keyword digests are for managers", reason="MANAGERS_ONLY")
    if not org_path and not who.has_role("director"):
        raise PermissionDenied("the tenant-wide digest is for directors and admins", reason="MANAGERS_ONLY")
    return None if not org_path and who.has_role("director") else (who.org,)


def check_digest_readable(who: Principal, digest_id: str, org_path: str) -> None:
    if who.acts_tenant_wide:
        return
    if not who.has_role(*MANAGERS) or not who.org:
        raise PermissionDenied("keyword digests are for managers", reason="MANAGERS_ONLY")
    if org_path and who.org_contains(org_path):
        return
    if not org_path and who.has_role("director"):
        return
    raise NotFound("integration.KeywordDigest", digest_id)


def may_submit_for(who: Principal, owner_user_id: str, org_path: str) -> bool:
    """A rep for their own lead or deal; a manager for their team's; admins and services for any."""
    if who.acts_tenant_wide or owner_user_id == who.user_id:
        return True
    return who.has_role(*MANAGERS) and bool(org_path) and who.org_contains(org_path)
