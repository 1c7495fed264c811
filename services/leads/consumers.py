"""Stream consumers of the leads service: our own events wake each lead's watch workflow.

Every change that matters to a lead's timers emits one of our events through the outbox; this consumer
signals-with-start the lead's workflow, so a change committed while Temporal is down still reaches it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from kit.events import EventEnvelope
from kit.events.consumer import Handler
from kit.runtime import Runtime
from services.leads.workflows import SIGNAL, WORKFLOW_NAME, WatchInput, workflow_id


async def poke(client: Client, task_queue: str, tenant: str, lead_id: str) -> None:
    """Start the lead's watch, or tell the running one to look again (signal-with-start)."""
    await client.start_workflow(
        WORKFLOW_NAME,
        WatchInput(tenant, lead_id),
        id=workflow_id(tenant, lead_id),
        task_queue=task_queue,
        start_signal=SIGNAL,
    )


def watch_handler(rt: Runtime) -> Handler:
    """The handler of the `leads-watch` consumer group (declared in app.SPEC): one poke per event."""

    async def handle(envelope: EventEnvelope, _session: AsyncSession) -> None:
        await poke(rt.temporal, rt.settings.task_queue, envelope.tenant, envelope.subject)

    return handle
