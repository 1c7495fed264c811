"""Resolving recipients against notify's own directory (pure: works on snapshots).

Org paths are "/"-separated; "east" contains "east/team-a" but not "eastern".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Member:
    user_id: str
    org_unit_path: str
    roles: frozenset[str]
    active: bool = True


def _segments(path: str) -> tuple[str, ...]:
    return tuple(s for s in path.strip("/").split("/") if s)


def in_unit(member_path: str, unit: str, *, descendants: bool) -> bool:
    mine, theirs = _segments(member_path), _segments(unit)
    if descendants:
        return mine[: len(theirs)] == theirs
    return mine == theirs


def holders(members: Iterable[Member], role: str, unit: str, *, descendants: bool = False) -> list[str]:
    """Active users holding `role` in `unit` (and below it, when asked)."""
    return sorted(
        m.user_id
        for m in members
        if m.active and role in m.roles and in_unit(m.org_unit_path, unit, descendants=descendants)
    )


def managers(members: Iterable[Member], user_id: str, role: str) -> list[str]:
    """Holders of `role` in the nearest unit at or above the user's that has any (excluding the user)."""
    snapshot = list(members)
    me = next((m for m in snapshot if m.user_id == user_id), None)
    if me is None:
        return []
    path = _segments(me.org_unit_path)
    for depth in range(len(path), -1, -1):
        unit = "/".join(path[:depth])
        found = [u for u in holders(snapshot, role, unit) if u != user_id]
        if found:
            return found
    return []


def escalation_targets(members: Iterable[Member], user_ids: Iterable[str], role: str) -> list[str]:
    """The `role` managers of every user in `user_ids`, deduplicated, in a stable order."""
    snapshot = list(members)
    found: dict[str, None] = {}
    for uid in user_ids:
        for manager in managers(snapshot, uid, role):
            found[manager] = None
    return list(found)
