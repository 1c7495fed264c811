"""What a service's demo seed is given (the demo users, a token each, where each service listens).

Apart from kit.runtime so that `make run`'s launcher, which only names the demo users, does not
import a whole service runtime (SQLAlchemy, Temporal, every service's modules): the seeds run in
a child process of their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the launcher names the demo users for the life of the stack: no gRPC in it
    import grpc


@dataclass(frozen=True)
class SeedUser:
    """A user of the seeded demo organisation."""

    user_id: str
    roles: tuple[str, ...]
    org: str
    display_name: str


@dataclass(frozen=True)
class SeedClients:
    """What a service's demo seed gets: where each service listens and a token per demo user."""

    tenant: str
    addresses: Mapping[str, str]
    tokens: Mapping[str, str]
    users: Sequence[SeedUser]

    def metadata(self, user: str = "admin") -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.tokens[user]}"),)

    @asynccontextmanager
    async def channel(self, service: str) -> AsyncIterator[grpc.aio.Channel]:
        from kit.grpc.balancing import balanced_channel

        async with balanced_channel(self.addresses[service]) as channel:
            yield channel


DemoSeed = Callable[[SeedClients], Awaitable[None]]
