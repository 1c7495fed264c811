"""The demo tenant `make run` seeds: one region, two teams, a supervisor each, four reps each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from kit.auth import AuthConfig, TokenMinter

TENANT = "demo"


@dataclass(frozen=True)
class DemoUser:
    user_id: str
    roles: tuple[str, ...]
    org: str
    display_name: str


def demo_users() -> list[DemoUser]:
    users = [
        DemoUser("admin", ("admin",), "", "Ops Admin"),
        DemoUser("director-east", ("director",), "east", "East Region Director"),
        DemoUser("sup-a", ("supervisor",), "east/team-a", "Team A Supervisor"),
        DemoUser("sup-b", ("supervisor",), "east/team-b", "Team B Supervisor"),
    ]
    for team in ("a", "b"):
        users += [
            DemoUser(f"rep-{team}{n}", ("rep",), f"east/team-{team}", f"Rep {team.upper()}{n}")
            for n in range(1, 5)
        ]
    return users


def demo_tokens(config: AuthConfig | None = None, ttl: timedelta | None = None) -> dict[str, str]:
    """A token per demo user, living as long as verifiers accept (SALESOPS_JWT_MAX_LIFETIME, 12 h)."""
    minter = TokenMinter(config or AuthConfig.from_env())
    ttl = ttl or minter.config.max_lifetime
    return {
        u.user_id: minter.mint(u.user_id, TENANT, list(u.roles), org=u.org, ttl=ttl) for u in demo_users()
    }
