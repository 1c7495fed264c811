"""A CreateLead group reads the teams of its routing rules in one statement (Roster.prefetch,
RepRepository.in_teams_with_loads): each team's reps, in order, with their loads, exactly as the
statement per team reads them, and only teams whose size an earlier batch saw."""

from __future__ import annotations

from datetime import UTC, datetime

from kit.resources import UnitOfWork
from services.leads import batch_routing
from services.leads.batch_routing import Roster
from services.leads.domain import routing
from services.leads.repositories.reps import RepRepository
from services.leads.store import RepLoadRow, RepRow, transactions
from tests.leads.conftest import Leads

AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
# A team, its sub-team, a sibling whose path starts with the team's (not below it), another team,
# a team whose path is the first's in another case.
TEAMS = {
    "east/team-a": ["r-a2", "r-a1", "r-a3"],
    "east/team-a/sub": ["r-s1", "r-a0"],
    "east/team-ab": ["r-b1"],
    "north/team-b": ["r-n2", "r-n1"],
    "East/Team-A/up": ["r-up"],  # not below "east/team-a": paths match exactly in case
}
KEYS = [("east/team-a", True), ("east/team-a", False), ("east/team-ab", False), ("north/team-b", True)]


async def _seed(leads: Leads) -> None:
    for tenant in ("demo", "other"):
        async with leads.db.session(tenant) as s:
            for team, users in TEAMS.items():
                for n, user in enumerate(users):
                    s.add(RepRow(user_id=user, team_path=team, updated_at=AT))
                    if n % 2 == 0:
                        s.add(RepLoadRow(user_id=user, open_leads=n + (3 if tenant == "demo" else 50)))
            await s.commit()


async def test_teams_in_one_statement_answer_as_one_statement_each(leads: Leads) -> None:
    await _seed(leads)

    async def work(uow: UnitOfWork) -> None:
        repo = RepRepository(uow)
        together = await repo.in_teams_with_loads(KEYS)
        assert set(together) == set(KEYS)
        for key in KEYS:
            alone = await repo.in_team_with_loads(*key)
            assert [(r.user_id, n) for r, n in together[key]] == [(r.user_id, n) for r, n in alone]
            assert all(r.tenant_id == "demo" for r, _ in together[key])
        assert [r.user_id for r, _ in together[("east/team-a", True)]] == [
            "r-a0",
            "r-a1",
            "r-a2",
            "r-a3",
            "r-s1",
        ]
        assert [r.user_id for r, _ in together[("east/team-ab", False)]] == ["r-b1"]

    await transactions(leads.db).run("demo", work)


async def test_prefetch_reads_only_teams_seen_before(leads: Leads) -> None:
    await _seed(leads)
    rules = [
        routing.Rule(f"r{i}", team, routing.WRR, include_sub_teams=sub) for i, (team, sub) in enumerate(KEYS)
    ]
    rules.append(routing.Rule("claim", "east/team-ab", routing.CLAIM_ONLY))
    batch_routing._TEAM_SIZES.clear()

    async def work(uow: UnitOfWork) -> None:
        first = Roster(uow)
        await first.prefetch(rules)
        assert first._teams == {}  # no size known yet: nothing read up front
        for rule in rules[:2]:
            await first.team(rule)
        second = Roster(uow)
        await second.prefetch(rules)  # the two teams seen, read together
        assert set(second._teams) == {KEYS[0], KEYS[1]}
        assert [r.user_id for r in second._teams[KEYS[0]]] == [r.user_id for r in await first.team(rules[0])]
        assert second._loads == first._loads
        batch_routing._TEAM_SIZES[("demo", *KEYS[2])] = batch_routing.PREFETCH_REPS  # too many in all
        third = Roster(uow)
        await third.prefetch(rules)
        assert third._teams == {}

    try:
        await transactions(leads.db).run("demo", work)
    finally:
        batch_routing._TEAM_SIZES.clear()


def test_team_sizes_keep_the_most_recently_read_teams_only() -> None:
    sizes = batch_routing.TeamSizes(3)
    for i in range(3):
        sizes[("t", f"team-{i}", False)] = i
    sizes[("t", "team-0", False)] = 7  # read again: the most recent, its size overwritten
    sizes[("t", "team-3", False)] = 3  # over the limit: the least recently read goes
    assert list(sizes.items()) == [
        (("t", "team-2", False), 2),
        (("t", "team-0", False), 7),
        (("t", "team-3", False), 3),
    ]
    for i in range(100):  # tenants come and go: never more than the limit
        sizes[(f"tenant-{i}", "east", True)] = 1
    assert len(sizes) == 3 and ("tenant-99", "east", True) in sizes
    assert isinstance(batch_routing._TEAM_SIZES, batch_routing.TeamSizes)
    assert batch_routing._TEAM_SIZES.limit == batch_routing.TEAM_SIZES_MAX
