"""What routing keeps between decisions: the reps of a roster in least-loaded order, and the rule
each kind of lead matched, so a decision over 2,000 reps and 200 rules reads a few entries instead
of scanning and sorting them all.

Reps and rules are frozen: a roster or rule list whose items are the same objects (checked by
identity, in C, per decision) is the same roster. A roster with a few reps replaced (the winner's
load went up) is brought up to date in place; anything bigger is indexed anew. Pure apart from
these memos, which a lock guards (a decision may run in any thread).
"""

from __future__ import annotations

import functools
import threading
from bisect import bisect_left, insort
from collections import OrderedDict
from collections.abc import Callable, Sequence
from itertools import compress, islice
from operator import is_not
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.leads.domain.routing import Rep, Rule

NEVER = float("-inf")
LOCK = threading.RLock()
_ROSTERS = 4  # rosters kept (most recent first): a few teams routed in turn each keep theirs
_REPLACED = 16  # replaced reps brought up to date in place; more and the roster is indexed anew
# Reps held across a roster's (team, skills, language) orders (~95 bytes each: ~3 MiB a roster,
# ~12 MiB for all kept); past it the orders start over. By entries, not orders: a 2,000-rep team
# keeps 16 variants, small teams many more.
_ENTRIES = 32_768
# Rules traced across a rule list's kept matches (a kept trace of 200 rules holds ~44 KiB: 64 of
# them, ~2.8 MiB a list); a list of few rules keeps more kinds of lead, never fewer than 8.
_TRACED = 12_800

Key = tuple[float, float, int]  # (load key, last assigned or NEVER, position): least first


@functools.lru_cache(maxsize=65536)
def load_key(open_leads: int, capacity: int) -> float:
    """Least-loaded sort key: minus the free share, rounded so equal loads tie exactly."""
    return -round(1.0 - (open_leads / capacity if capacity else 0.0), 6)


def key(rep: Rep, pos: int) -> Key:
    at = rep.last_assigned
    return (load_key(rep.open_leads, rep.capacity), at.timestamp() if at else NEVER, pos)


def static_ok(rep: Rep, skills: tuple[str, ...], language: str) -> bool:
    """Not skipped for what holds whatever the hour: accepting, under capacity, skills, language."""
    return (
        rep.accepting
        and (not rep.capacity or rep.open_leads < rep.capacity)
        and (not skills or all(x in rep.skills for x in skills))
        and (not language or language in rep.languages)
    )


def dynamic(rep: Rep) -> bool:
    """Whether the rep's eligibility depends on the hour (leaves, an own calendar)."""
    return bool(rep.leaves) or rep.calendar is not None


class Order:
    """A team's reps for one (skills, language): the statically eligible ones sorted by key, the rest."""

    __slots__ = ("dynamic", "ok", "skipped")

    def __init__(self) -> None:
        self.ok: list[Key] = []
        self.skipped: list[int] = []  # positions, ascending
        self.dynamic: list[int] = []  # positions in `ok` whose eligibility is checked per decision

    def add(self, rep: Rep, pos: int, skills: tuple[str, ...], language: str) -> None:
        if static_ok(rep, skills, language):
            insort(self.ok, key(rep, pos))
            if dynamic(rep):
                insort(self.dynamic, pos)
        else:
            insort(self.skipped, pos)

    def remove(self, rep: Rep, pos: int, skills: tuple[str, ...], language: str) -> None:
        if static_ok(rep, skills, language):
            del self.ok[bisect_left(self.ok, key(rep, pos))]
            if dynamic(rep):
                del self.dynamic[bisect_left(self.dynamic, pos)]
        else:
            del self.skipped[bisect_left(self.skipped, pos)]


def _in_team(path: str, team: str, sub: bool) -> bool:
    return path == team or (sub and path.startswith(team + "/"))


class Roster:
    """One list of reps (a snapshot of the caller's), its teams and their orders, built on demand."""

    def __init__(self, reps: Sequence[Rep]) -> None:
        self.reps: list[Rep] = list(reps)
        self._teams: dict[tuple[str, bool], tuple[list[int], frozenset[int]]] = {}
        self._orders: dict[tuple[str, bool, tuple[str, ...], str], Order] = {}
        self._entries = 0  # reps held by the orders
        self._by_user: dict[str, list[int]] | None = None

    def team(self, team: str, sub: bool) -> tuple[list[int], frozenset[int]]:
        """The positions of the team's reps, in list order and as a set."""
        found = self._teams.get((team, sub))
        if found is None:
            members = [i for i, r in enumerate(self.reps) if _in_team(r.team_path, team, sub)]
            found = self._teams[(team, sub)] = (members, frozenset(members))
        return found

    def order(self, team: str, sub: bool, skills: tuple[str, ...], language: str) -> Order:
        k = (team, sub, skills, language)
        order = self._orders.get(k)
        if order is None:
            members = self.team(team, sub)[0]
            if self._entries + len(members) > _ENTRIES:
                self._orders.clear()
                self._entries = 0
            self._entries += len(members)
            order = Order()
            reps = self.reps
            for pos in members:
                rep = reps[pos]
                if static_ok(rep, skills, language):
                    order.ok.append(key(rep, pos))
                    if dynamic(rep):
                        order.dynamic.append(pos)
                else:
                    order.skipped.append(pos)
            order.ok.sort()
            self._orders[k] = order
        return order

    def positions(self, user_id: str) -> list[int]:
        if self._by_user is None:
            self._by_user = {}
            for i, r in enumerate(self.reps):
                self._by_user.setdefault(r.user_id, []).append(i)
        return self._by_user.get(user_id, [])

    def replace(self, changed: list[int], reps: Sequence[Rep]) -> bool:
        """Bring the orders up to date with `reps`, which differs at `changed`; False: index anew."""
        mine = self.reps
        if any(mine[p].team_path != reps[p].team_path or mine[p].user_id != reps[p].user_id for p in changed):
            return False
        for p in changed:
            old, new = mine[p], reps[p]
            for (team, sub, skills, language), order in self._orders.items():
                if _in_team(new.team_path, team, sub):
                    order.remove(old, p, skills, language)
                    order.add(new, p, skills, language)
            mine[p] = new
        return True


_rosters: list[Roster] = []


def _differences(mine: Sequence[Any], theirs: Sequence[Any], limit: int) -> list[int]:
    """Positions where the items are not the same objects (at most limit + 1 of them)."""
    return list(islice(compress(range(len(mine)), map(is_not, mine, theirs)), limit + 1))


def roster(reps: Sequence[Rep]) -> Roster | None:
    """The kept roster of `reps`, brought up to date; None (and kept for next time) when new.

    Call with LOCK held. A roster seen once is not indexed (a caller reading fresh reps per decision
    would pay for an index it never reuses); the second decision over it is.
    """
    n = len(reps)
    for i, r in enumerate(_rosters):
        if len(r.reps) != n:
            continue
        changed = _differences(r.reps, reps, _REPLACED)
        if len(changed) > _REPLACED or not r.replace(changed, reps):
            continue
        if i:
            _rosters.insert(0, _rosters.pop(i))
        return r
    _rosters.insert(0, Roster(reps))
    del _rosters[_ROSTERS:]
    return None


class RuleMemo:
    """The match (rule and trace) of each kind of lead against one list of rules."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules: list[Rule] = list(rules)
        self.matches: OrderedDict[tuple[Any, ...], tuple[Any, Any]] = OrderedDict()


_rule_memos: list[RuleMemo] = []


def matched(
    rules: Sequence[Rule], facts: tuple[Any, ...], match: Callable[[], tuple[Any, Any]]
) -> tuple[Any, Any]:
    """`match()` for this rule list and kind of lead (`facts`: everything but the lead's id), memoised."""
    with LOCK:
        memo = None
        for i, m in enumerate(_rule_memos):
            if len(m.rules) == len(rules) and not _differences(m.rules, rules, 0):
                memo = m
                if i:
                    _rule_memos.insert(0, _rule_memos.pop(i))
                break
        if memo is None:
            memo = RuleMemo(rules)
            _rule_memos.insert(0, memo)
            del _rule_memos[_ROSTERS:]
        found = memo.matches.get(facts)
        if found is None:
            found = memo.matches[facts] = match()
            if len(memo.matches) > max(8, _TRACED // max(1, len(rules))):
                memo.matches.popitem(last=False)
        else:
            memo.matches.move_to_end(facts)
        return found
