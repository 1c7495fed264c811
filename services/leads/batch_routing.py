"""Routing a batch of new leads: each team's reps and their loads are read once, then kept up to date
in memory as the batch assigns, so every lead is routed as if the ones before it had been committed
(ownership.route, without its two reads per lead)."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from datetime import datetime

from sqlalchemy.orm.attributes import set_committed_value
from ulid import ULID

from kit.resources import UnitOfWork
from services.leads import decisions, ownership, policies
from services.leads.domain import pool as pool_rules
from services.leads.domain import routing
from services.leads.policies import TenantPolicies
from services.leads.repositories.reps import RepRepository
from services.leads.reps import rep_for_routing
from services.leads.store import LeadRow, RepRow

TeamKey = tuple[str, str, bool]  # (tenant, team path, include_sub_teams)


class TeamSizes(OrderedDict[TeamKey, int]):
    """Reps per team as the last batch read them, the most recently read TEAM_SIZES_MAX kept.
    Never invalidated, only overwritten by the next read of the team: a size only steers which
    teams Roster.prefetch reads together (the reps themselves are always read anew), so a stale or
    evicted one costs at most a statement. Evicting the least recently read bounds it, as tenants
    come and go and routing rules name new teams, where a plain dict grew for the process's life."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: TeamKey, size: int) -> None:
        super().__setitem__(key, size)
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


# Teams named by the routing rules of the tenants routing lately (a handful a tenant), ~0.3 kB each.
TEAM_SIZES_MAX = 4096
_TEAM_SIZES = TeamSizes(TEAM_SIZES_MAX)
PREFETCH_REPS = 300


class Roster:
    """The reps the batch has routed to, their open leads and last assignment as the batch left them."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self._teams: dict[tuple[str, bool], list[RepRow]] = {}
        self._loads: dict[str, int] = {}
        self._assigned: dict[str, datetime] = {}
        self._wrr: dict[str, int] = {}  # round-robin states the batch moved, by user
        self._reps: dict[tuple[str, int], routing.Rep] = {}  # the profile parsed once per rep and cap
        self._current: dict[tuple[str, int], routing.Rep] = {}  # as the batch left it
        # Each team's reps as the batch left them, per pool cap, and where each rep sits in them: a
        # lead replaces its winner's entry only, so a lead costs no pass over a team of 2,000 (and
        # routing, handed the same list with one rep replaced, keeps its least-loaded order).
        self._lists: dict[tuple[str, bool, int], tuple[list[routing.Rep], dict[str, RepRow]]] = {}
        self._places: dict[str, list[tuple[list[routing.Rep], int, RepRow, int]]] = {}

    async def prefetch(self, rules: list[routing.Rule]) -> None:
        """Read the teams of the routing rules in one statement, before the batch routes, instead
        of one statement per team at its first lead (each a round trip and an ORM execution: three
        of a CreateLead group's ~17 round trips with three regional teams). Only teams whose size an
        earlier batch saw, up to PREFETCH_REPS reps in all: a team never read, or a large one, is
        read when a lead first needs it, as before."""
        tenant = self.uow.tenant
        keys = {
            (r.team_path, r.include_sub_teams)
            for r in rules
            if r.enabled and r.team_path and r.strategy != routing.CLAIM_ONLY
        }
        known = sorted(k for k in keys if k not in self._teams and (tenant, *k) in _TEAM_SIZES)
        if len(known) < 2 or sum(_TEAM_SIZES[(tenant, *k)] for k in known) > PREFETCH_REPS:
            return
        for key, found in (await RepRepository(self.uow).in_teams_with_loads(known)).items():
            self._keep(key, found)

    async def team(self, rule: routing.Rule) -> list[RepRow]:
        key = (rule.team_path, rule.include_sub_teams)
        rows = self._teams.get(key)
        if rows is None:
            rows = self._keep(key, await RepRepository(self.uow).in_team_with_loads(*key))
        return rows

    def _keep(self, key: tuple[str, bool], found: list[tuple[RepRow, int]]) -> list[RepRow]:
        rows = self._teams[key] = [r for r, _ in found]
        _TEAM_SIZES[(self.uow.tenant, *key)] = len(rows)
        # A rep already routed to by this batch (another team's rule) keeps the batch's figure.
        for r, load in found:
            self._loads.setdefault(r.user_id, load)
        return rows

    def rep(self, row: RepRow, pool_cap: int) -> routing.Rep:
        key = (row.user_id, pool_cap)
        base = self._reps.get(key)
        if base is None:
            base = self._reps[key] = rep_for_routing(row, 0, pool_cap)
        last = self._assigned.get(row.user_id, base.last_assigned)
        load = self._loads.get(row.user_id, 0)
        # Kept while its load and last assignment stand: a lead changes one rep of the team (its
        # winner), so the others are not rebuilt for every lead (a team of 2,000, 2,000 per lead).
        current = self._current.get(key)
        if current is None or current.open_leads != load or current.last_assigned != last:
            current = self._current[key] = dataclasses.replace(base, open_leads=load, last_assigned=last)
        return current

    async def reps(self, rule: routing.Rule, pool_cap: int) -> tuple[list[routing.Rep], dict[str, RepRow]]:
        """The team's reps as the batch left them (kept: the same list, updated in place) and rows by user."""
        key = (rule.team_path, rule.include_sub_teams, pool_cap)
        found = self._lists.get(key)
        if found is None:
            rows = await self.team(rule)
            reps = [self.rep(r, pool_cap) for r in rows]
            for i, r in enumerate(rows):
                self._places.setdefault(r.user_id, []).append((reps, i, r, pool_cap))
            found = self._lists[key] = (reps, {r.user_id: r for r in rows})
        return found

    async def stamp(self) -> None:
        """Write the reps' last assignments and round-robin states as the batch left them: one
        statement, after the batch's leads and load counters are written (the lock order of every
        ownership change: the lead, the counters, then rep profiles), instead of an UPDATE per lead
        before either and the states' ORM flush."""
        await RepRepository(self.uow).stamp_many(self._assigned, self._wrr)

    def wrr(self, row: RepRow, current: int) -> None:
        """The batch moved the rep's round-robin state: kept on the row as if loaded so (later leads
        read it; the flush leaves it) and written by `stamp` with the rep's stamp, one statement."""
        set_committed_value(row, "wrr_current", current)
        self._wrr[row.user_id] = current

    def assigned(self, user_id: str, at: datetime) -> None:
        self._loads[user_id] = self._loads.get(user_id, 0) + 1
        self._assigned[user_id] = at
        for reps, i, row, pool_cap in self._places.get(user_id, ()):
            reps[i] = self.rep(row, pool_cap)


async def route_new(
    uow: UnitOfWork, roster: Roster, row: LeadRow, tenant: TenantPolicies, at: datetime
) -> None:
    """ownership.route for a lead created in this batch (no previous owner): an owner or a pool.
    The winners' last assignments are written by `roster.stamp` at the end of the batch."""
    facts = ownership.lead_facts(row)
    rule, _ = routing.match_rule_kept(tenant.routing, facts)
    region_pool = pool_rules.pool_for_region(tenant.pools, row.region)
    reps: list[routing.Rep] = []
    rep_rows: dict[str, RepRow] = {}
    if rule is not None and rule.strategy != routing.CLAIM_ONLY:
        reps, rep_rows = await roster.reps(rule, region_pool.private_lead_cap)
    wrr = rule is not None and rule.strategy == routing.WRR  # only WRR reads (and moves) the state
    decision = routing.route(
        facts,
        tenant.routing,
        reps,
        at,
        fallback_pool=tenant.routing_msg.fallback_pool_id or "fallback",
        region_pool=region_pool.pool_id,
        tenant_calendar=policies.CALENDAR,
        wrr_state={u: r.wrr_current for u, r in rep_rows.items()} if wrr else None,
    )
    if wrr:
        for uid, current in decision.wrr_state.items():
            if uid in rep_rows and rep_rows[uid].wrr_current != current:
                roster.wrr(rep_rows[uid], current)
    # The stored trace built straight from the decision (no proto made and converted back).
    body = decisions.decision_body(
        decision,
        row,
        decision_id=str(ULID()),
        reason="ROUTED",
        actor=ownership.SYSTEM,
        at=at,
        previous_owner="",
        rules_version=tenant.routing_msg.version,
    )
    msg = decisions.header(body)
    if decision.winner:
        winner = roster.rep(rep_rows[decision.winner], region_pool.private_lead_cap)  # the one routed
        await ownership.apply_owner(
            uow,
            row,
            tenant,
            owner=winner.user_id,
            team_path=winner.team_path,
            supervisor=winner.supervisor_user_id,
            reason="ROUTED",
            decision=msg,
            decision_body=body,
            at=at,
            stamp=False,  # roster.stamp, once for the batch
        )
        roster.assigned(winner.user_id, at)
        return
    row.pool_id = decision.pool_id
    row.pool_entry_reason = "CLAIM_ONLY" if decision.strategy == routing.CLAIM_ONLY else "UNROUTED"
    row.team_path = decision.team_path
    row.last_decision_id = msg.decision_id
    decisions.record(uow, msg, at, body)
