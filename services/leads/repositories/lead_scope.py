"""Which leads a viewer sees, and whose phone unmasked: the one SQL form of access.py's rules.

Written with bound parameters (`viewer`, `viewer_org`, `viewer_org_below`) so a statement can be
built once per viewer *shape* and only bound per call (lead_reads). The ORM queries take the same
clauses with the viewer's values in them (`values`: `visible_to` / `phone_visible_to` in leads.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, or_, true

from kit.auth import Principal
from kit.resources import CaseSensitiveMatch, glob_pattern, like_pattern
from services.leads import access
from services.leads.domain import status


def org_branch(who: Principal) -> bool:
    """A supervisor or director with an org also sees the leads of their part of the tree."""
    return who.has_role("supervisor", "director") and bool(who.org.strip("/"))


Values = dict[str, Any] | None


def _bind(name: str, values: Values) -> Any:
    """A parameter bound at execution (values None), or carrying its value (a name of its own)."""
    return bindparam(name) if values is None else bindparam(name, values[name], unique=True)


def in_team(column: Any, name: str, values: Values = None) -> ColumnElement[bool]:
    """`column` is the team bound as `name`, or below it, exactly in case ("East/NJ" is not below
    "east"; params from `team_params`)."""
    below = CaseSensitiveMatch(column, _bind(name + "_below", values), _bind(name + "_glob", values))
    return or_(column == _bind(name, values), below)


def team_params(name: str, team: str) -> dict[str, str]:
    return {name: team, name + "_below": like_pattern(team + "/"), name + "_glob": glob_pattern(team + "/")}


def visible(who: Principal, c: Any, values: Values = None) -> ColumnElement[bool]:
    """The leads `who` may see (columns `c`): rep -> own + pools; supervisor/director -> also their
    org; admin -> all."""
    if access.sees_all(who):
        return true()
    clauses = [c.owner_user_id == _bind("viewer", values), c.status == status.IN_POOL]
    if org_branch(who):
        clauses.append(in_team(c.team_path, "viewer_org", values))
    return or_(*clauses)


def phone_visible(who: Principal, c: Any, values: Values = None) -> ColumnElement[bool]:
    """The leads whose phone `who` sees unmasked (the SQL twin of access.can_see_phone)."""
    if access.sees_all(who):
        return true()
    clauses: list[ColumnElement[bool]] = [c.owner_user_id == _bind("viewer", values)]
    if org_branch(who):
        clauses.append(and_(c.owner_user_id.is_not(None), in_team(c.team_path, "viewer_org", values)))
    return or_(*clauses)


def viewer_params(who: Principal) -> dict[str, Any]:
    if access.sees_all(who):
        return {}
    params: dict[str, Any] = {"viewer": who.user_id}
    if org_branch(who):
        params |= team_params("viewer_org", who.org.strip("/"))
    return params


def viewer_shape(who: Principal) -> tuple[bool, bool]:
    return access.sees_all(who), org_branch(who)
