"""Who may see which card uses and feedback duties, decided here and nowhere else.

A rep sees their own uses and duties. A supervisor or director also sees those
of reps in their org subtree (the team's overdue board); admins and services see
all. Feedback is given only by the rep who owes it. Anything the caller may not
see answers NOT_FOUND, like a use that does not exist (or lives in another tenant).

The SQL twin of `can_see` (for lists) is `scope`.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, true
from sqlalchemy.orm import QueryableAttribute

from kit.auth import Principal
from kit.errors import NotFound, PermissionDenied
from services.knowledge.access import is_manager

USE = "knowledge.CardUse"


def sees_everything(who: Principal) -> bool:
    return who.acts_tenant_wide


def can_see(who: Principal, user_id: str, org_path: str) -> bool:
    if sees_everything(who) or user_id == who.user_id:
        return True
    return is_manager(who) and who.org_contains(org_path)


def require_see(who: Principal, user_id: str, org_path: str, use_id: str) -> None:
    if not can_see(who, user_id, org_path):
        raise NotFound(USE, use_id)


def require_owner(who: Principal, user_id: str, org_path: str, use_id: str) -> None:
    """Rating a use: NOT_FOUND if the caller cannot see it, else DENIED unless it is theirs."""
    require_see(who, user_id, org_path, use_id)
    if user_id != who.user_id:
        raise PermissionDenied("only the rep who used the card rates it", reason="NOT_USE_OWNER")


def in_subtree(column: QueryableAttribute[str], org: str) -> ColumnElement[bool]:
    """`column` is `org` or a unit below it (segment-wise, like Principal.org_contains)."""
    root = org.strip("/")
    return or_(column == root, column.startswith(root + "/", autoescape=True))


def scope(
    who: Principal, user_column: QueryableAttribute[str], org_column: QueryableAttribute[str]
) -> ColumnElement[bool]:
    """The rows `who` may see (can_see in SQL)."""
    if sees_everything(who):
        return true()
    mine = user_column == who.user_id
    if is_manager(who) and who.org.strip("/"):
        return or_(mine, in_subtree(org_column, who.org))
    return mine
