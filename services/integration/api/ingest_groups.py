"""IngestWebhook's plumbing: group commit of a tenant's concurrent deliveries, and the receivers
(connector snapshots, secret unsealed) their signatures are checked against.

Group commit (kit's GroupCommit, by tenant): while one write transaction of a tenant's deliveries
runs, the deliveries that arrive wait, then are written together in the next one (webhooks.record:
one commit, a few statements for all). A lone delivery is written at once (no added latency); on
SQLite, after a group of several, the next waits up to LINGER_S for more to arrive. Each caller gets
its own answer; if a group's transaction fails as a whole, each of its callers is written alone.

Receivers: the connector row read, its secret unsealed and its config parsed once per version
instead of per delivery. A snapshot only ever lets a delivery in together with the write
transaction's check that the row's stamp (version, creation, sealed secrets) is unchanged, so a
rotated, disabled or deleted connector's old secret is refused at its first use and dropped.
A refusal is never decided on a snapshot: the current row decides it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kit.resources import GroupCommit
from services.integration import webhooks
from services.integration.webhook_checks import Receiver
from services.integration.webhooks import Delivery

MAX_GROUP = 100  # deliveries per transaction
# On SQLite (one writer), after a group, up to this long for more deliveries before the next (kit's
# GroupCommit linger, only when fewer wait than were just answered). Through the gateway a busy
# sender's deliveries reach the handler one at a time (grpc.aio accepts one call per turn of the
# event loop), so without it the groups were 2 (median) and a write transaction's fixed cost (~0.6 ms
# of the loop's CPU: session, the writer's turn, four hand-offs to its thread, commit) was paid every
# two deliveries. Not on PostgreSQL: there a transaction is mostly round trips the loop need not
# wait for, and the linger's wait showed in the p99 (3 pairs, each worse).
# One group of a tenant at a time on PostgreSQL too. Up to 3 in flight, started in any free slot:
# smaller groups, 1.5x the loop's CPU per webhook, p99 ratio 4.45 vs 2.40; started only once 8 (or
# 12, 2 in flight) wait: 2.78 vs 2.96 (2.78 vs 2.74) at 1.25x (1.0x) the CPU (medians of 3-4
# interleaved pairs). The wait moved from the handler to the gRPC accept in front of the busier
# loop. Overlapping groups would be safe (the unique key, the counts' increment in SQL).
LINGER_S = 0.005
MAX_RECEIVERS = 1024  # snapshots kept (per process), the least recently stored dropped first

Recorded = webhooks.Recorded | None  # None: verify again (the connector changed)
Write = Callable[[str, list[Delivery]], Awaitable[list[Recorded]]]


class IngestGroups:
    """Per tenant: at most one write transaction of deliveries at a time, the rest grouped."""

    def __init__(self, write: Write, max_group: int = MAX_GROUP, linger: float = 0.0) -> None:
        async def alone(tenant: str, delivery: Delivery) -> Recorded:
            return (await write(tenant, [delivery]))[0]

        self._groups: GroupCommit[Delivery, Recorded] = GroupCommit(
            alone, write, max_group=max_group, what="webhook", linger=linger
        )

    async def record(self, tenant: str, delivery: Delivery) -> Recorded:
        return await self._groups.submit(tenant, delivery)


class Receivers:
    """Snapshots by (tenant, connector id); bounded. Holds unsealed secrets: never presented, and
    replaced or dropped as soon as a write finds the row changed."""

    def __init__(self, limit: int = MAX_RECEIVERS) -> None:
        self._limit = limit
        self._found: dict[tuple[str, str], Receiver] = {}

    def get(self, tenant: str, connector_id: str) -> Receiver | None:
        return self._found.get((tenant, connector_id))

    def put(self, tenant: str, found: Receiver) -> None:
        key = (tenant, found.connector_id)
        self._found.pop(key, None)
        while len(self._found) >= self._limit:
            self._found.pop(next(iter(self._found)))
        self._found[key] = found

    def drop(self, tenant: str, connector_id: str) -> None:
        self._found.pop((tenant, connector_id), None)
