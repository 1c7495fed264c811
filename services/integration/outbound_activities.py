"""The I/O of the outbound webhook workflows; each step runs a use case in its own unit of work."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.client import Client

from kit.db import Database
from kit.net import OutboundPolicy, SafeClient
from kit.runtime import Runtime
from services.integration import deliveries
from services.integration.delivery_attempts import Prepared, post, prepare, record
from services.integration.outbound_workflows import ATTEMPT, SWEEP, AttemptInput, AttemptStep
from services.integration.store import transactions


class OutboundActivities:
    def __init__(
        self,
        db: Database,
        temporal: Client | None = None,
        task_queue: str = "",
        policy: OutboundPolicy | None = None,
    ) -> None:
        self.db, self.tx = db, transactions(db)
        self.temporal, self.task_queue = temporal, task_queue
        self.policy = policy
        self._client: SafeClient | None = None

    @classmethod
    def from_runtime(cls, rt: Runtime) -> OutboundActivities:
        return cls(rt.db, rt.temporal, rt.settings.task_queue)

    @property
    def client(self) -> SafeClient:
        # Built on first use inside the worker's loop; SALESOPS_OUTBOUND_ALLOW(_LOOPBACK) name local receivers.
        if self._client is None:
            self._client = SafeClient(self.policy or OutboundPolicy.from_env(), timeout=30.0)
        return self._client

    @activity.defn(name=ATTEMPT)
    async def attempt(self, inp: AttemptInput) -> AttemptStep:
        at = datetime.fromisoformat(inp.at).astimezone(UTC)
        async with self.tx.read(inp.tenant) as uow:
            ready = await prepare(uow, inp.delivery_id, at)
        if ready is None:  # the delivery ends here (cancelled, dead-lettered): write that
            ready = await self.tx.run(inp.tenant, lambda uow: prepare(uow, inp.delivery_id, at))
        if not isinstance(ready, Prepared):
            assert ready is not None  # a writable unit of work always decides
            return ready
        answer = await post(self.client, ready, at)  # no transaction open while the partner answers
        return await self.tx.run(
            inp.tenant, lambda uow: record(uow, inp.delivery_id, ready.attempt, answer, at)
        )

    @activity.defn(name=SWEEP)
    async def sweep(self) -> int:
        assert self.temporal is not None
        return await deliveries.sweep(self.db, self.temporal, self.task_queue, datetime.now(UTC))

    def all(self) -> list[Callable[..., Any]]:
        return [self.attempt, self.sweep]
