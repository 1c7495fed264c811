"""Our own events start or wake each feedback duty's timer (signal-with-start), durably.

RecordSopCardUse and SubmitCardFeedback emit CardUsed / FeedbackRecorded through the
outbox in their transaction; this consumer turns them into a signal-with-start of the
duty's workflow, so a use committed while Temporal is down still gets its timer.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from kit.events import EventEnvelope, service_stream, unpack_payload
from kit.events.consumer import Handler
from kit.runtime import ConsumerSpec, Runtime
from salesops.knowledge.v1 import events_pb2
from services.knowledge.duty_workflows import SIGNAL, WORKFLOW_NAME, DutyInput, workflow_id
from services.knowledge.uses import EVENT_FEEDBACK, EVENT_USED


async def poke(client: Client, task_queue: str, tenant: str, duty_id: str) -> None:
    """Start the duty's timer, or tell the running one to look again."""
    await client.start_workflow(
        WORKFLOW_NAME,
        DutyInput(tenant, duty_id),
        id=workflow_id(tenant, duty_id),
        task_queue=task_queue,
        start_signal=SIGNAL,
    )


def duty_of(envelope: EventEnvelope) -> str:
    """The duty an event concerns; "" for a repeat use (its duty's timer is already running)."""
    if envelope.type == EVENT_USED:
        used = unpack_payload(envelope, events_pb2.CardUsed)
        return used.duty_use_id if used.duty_use_id == used.use_id else ""
    if envelope.type == EVENT_FEEDBACK:
        return unpack_payload(envelope, events_pb2.FeedbackRecorded).duty_use_id
    return ""


def duty_handler(rt: Runtime) -> Handler:
    async def handle(envelope: EventEnvelope, _session: AsyncSession) -> None:
        duty_id = duty_of(envelope)
        if duty_id:
            await poke(rt.temporal, rt.settings.task_queue, envelope.tenant, duty_id)

    return handle


DUTY_CONSUMER = ConsumerSpec(
    group="knowledge-duties",
    streams=(service_stream("knowledge"),),
    handler=duty_handler,
    types=(EVENT_USED, EVENT_FEEDBACK),
    role="worker",
    options={"min_idle": 30.0},
)
