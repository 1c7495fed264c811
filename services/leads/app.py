"""How the leads service plugs into the kit runtime."""

from __future__ import annotations

from kit.runtime import ServiceSpec
from services.leads import api, store, watch, workflows

SPEC = ServiceSpec(
    name="leads",
    metadata=store.metadata,
    outbox=store.outbox,
    processed_events=store.processed_events,
    servicers=api.registrations,
    workflows=(workflows.LeadWatchWorkflow,),
    activities=watch.activities,
    # Our own events start or wake each lead's watch workflow (durable: the outbox holds them).
    worker_background=(watch.start_consumer,),
)
