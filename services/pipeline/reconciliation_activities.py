"""Temporal activities of the reconciliation timer, and the consumer that arms it.

The activity runs the rules for one deal at the workflow's instant in one unit of work (raising
and clearing issues with their events) and answers when to look again. The consumer of
pipeline's own stream signals-with-start the deal's workflow for every event that can change its
answer, so a fact committed while Temporal is down still reaches it (the outbox holds the event).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.client import Client, WorkflowHandle

from kit.db import Database
from kit.events import EventEnvelope, service_stream
from kit.events.consumer import Handler
from kit.events.envelope import unpack_payload
from kit.resources import UnitOfWork
from kit.runtime import ConsumerSpec, Runtime
from salesops.pipeline.v1 import events_pb2
from services.pipeline import events, reconciliation
from services.pipeline.reconciliation_workflows import (
    SIGNAL,
    WORKFLOW_NAME,
    Checked,
    CheckInput,
    ReconciliationInput,
    workflow_id,
)
from services.pipeline.repositories.finance import ReconciliationIssues
from services.pipeline.store import transactions

# Pipeline's own events after which a deal's reconciliation may change.
WAKING = (
    reconciliation.FACT_RECORDED,
    events.DEAL_WON,
    events.DEAL_LOST,
    events.DEAL_REOPENED,
    events.DEAL_UPDATED,
    events.DEAL_OWNER_CHANGED,
)


class ReconciliationActivities:
    def __init__(self, db: Database) -> None:
        self.tx = transactions(db)

    @activity.defn(name="pipeline.reconciliation_check")
    async def check(self, inp: CheckInput) -> Checked:
        at = datetime.fromisoformat(inp.at)

        async def work(uow: UnitOfWork) -> Checked:
            nxt = await reconciliation.check_deal(uow, inp.deal_id, at)
            still_open = len(await ReconciliationIssues(uow).open_of(inp.deal_id))
            return Checked(nxt.isoformat() if nxt is not None else "", still_open)

        return await self.tx.run(inp.tenant, work)


def build(rt: Runtime) -> Sequence[Callable[..., object]]:
    return [ReconciliationActivities(rt.db).check]


async def poke(client: Client, task_queue: str, tenant: str, deal_id: str) -> WorkflowHandle[Any, Any]:
    """Start the deal's timer, or tell the running one to look again (signal-with-start)."""
    return await client.start_workflow(
        WORKFLOW_NAME,
        ReconciliationInput(tenant, deal_id),
        id=workflow_id(tenant, deal_id),
        task_queue=task_queue,
        start_signal=SIGNAL,
    )


def waking_handler(rt: Runtime) -> Handler:
    async def handle(envelope: EventEnvelope, _session: AsyncSession) -> None:
        if envelope.type == reconciliation.FACT_RECORDED:
            fact = unpack_payload(envelope, events_pb2.FinanceFactRecorded)
            if not fact.deal_id:
                return  # an unmatched fact: no deal to watch (its issue is raised at ingest)
        await poke(rt.temporal, rt.settings.task_queue, envelope.tenant, envelope.subject)

    return handle


RECONCILIATION_CONSUMER = ConsumerSpec(
    group="pipeline-reconciliation",
    streams=(service_stream(events.SOURCE),),
    handler=waking_handler,
    types=WAKING,
    role="worker",
    options={"min_idle": 30.0},
)
