"""The demo organisation, defined once: `make run` seeds it and test suites import it.

One region (east), two teams, a supervisor each, four reps each, a director, an
admin and the approvers of the shipped approval flows (legal, finance, gm,
tech-lead), all in tenant `demo`:

    from deploy.local.demo import DEMO_USERS, TENANT, demo_user, demo_token
    demo_user("rep-a1").org            # "east/team-a"
    demo_token(minter, "sup-a")        # a token with that user's roles and org
    demo_token(minter, "rep-a1", tenant="acme")   # the same person in another tenant
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING

from kit.seeding import SeedClients, SeedUser

if TYPE_CHECKING:  # imported where tokens are minted: the launcher only names the users
    from kit.auth import AuthConfig, TokenMinter

TENANT = "demo"
REGION = "east"
# Team org path -> its supervisor.
TEAMS: dict[str, str] = {"east/team-a": "sup-a", "east/team-b": "sup-b"}
REPS_PER_TEAM = 4
# Approvers of the shipped approval flows: user id -> (functional position the flows resolve, name).
APPROVERS: dict[str, tuple[str, str]] = {
    "legal": ("legal", "Legal Counsel"),
    "finance": ("finance_risk", "Finance Risk"),
    "gm": ("gm", "General Manager"),
    "tech-lead": ("tech_lead", "Tech Lead"),
}

DemoUser = SeedUser  # the name older callers use


def _org_chart() -> tuple[SeedUser, ...]:
    users = [
        SeedUser("admin", ("admin",), "", "Ops Admin"),
        SeedUser("director-east", ("director",), REGION, "East Region Director"),
    ]
    for team, supervisor in TEAMS.items():
        letter = team.rsplit("-", 1)[1]
        users.append(SeedUser(supervisor, ("supervisor",), team, f"Team {letter.upper()} Supervisor"))
    for team in TEAMS:
        letter = team.rsplit("-", 1)[1]
        users += [
            SeedUser(f"rep-{letter}{n}", ("rep",), team, f"Rep {letter.upper()}{n}")
            for n in range(1, REPS_PER_TEAM + 1)
        ]
    users += [SeedUser(uid, ("approver",), "", name) for uid, (_, name) in APPROVERS.items()]
    return tuple(users)


DEMO_USERS: tuple[SeedUser, ...] = _org_chart()
_BY_ID: dict[str, SeedUser] = {u.user_id: u for u in DEMO_USERS}


def demo_users() -> list[SeedUser]:
    return list(DEMO_USERS)


def demo_user(user_id: str) -> SeedUser:
    """A demo user by id (KeyError for anyone else)."""
    return _BY_ID[user_id]


def demo_token(
    minter: TokenMinter, user_id: str, *, tenant: str = TENANT, ttl: timedelta | None = None
) -> str:
    """A token for a demo user, with their roles and org (in `tenant`, default the demo tenant)."""
    user = demo_user(user_id)
    return minter.mint(user.user_id, tenant, list(user.roles), org=user.org, ttl=ttl)


def demo_tokens(config: AuthConfig | None = None, ttl: timedelta | None = None) -> dict[str, str]:
    """A token per demo user, living as long as verifiers accept (SALESOPS_JWT_MAX_LIFETIME, 12 h)."""
    from kit.auth import AuthConfig, TokenMinter

    minter = TokenMinter(config or AuthConfig.from_env())
    ttl = ttl or minter.config.max_lifetime
    return {u.user_id: demo_token(minter, u.user_id, ttl=ttl) for u in DEMO_USERS}


def demo_clients(addresses: Mapping[str, str], tokens: Mapping[str, str]) -> SeedClients:
    """What every service's `demo_seed` hook receives."""
    return SeedClients(tenant=TENANT, addresses=dict(addresses), tokens=dict(tokens), users=DEMO_USERS)
