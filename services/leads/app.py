"""How the leads service plugs into the kit runtime."""

from __future__ import annotations

from kit.runtime import ServiceSpec
from services.leads import api, store

SPEC = ServiceSpec(
    name="leads",
    metadata=store.metadata,
    outbox=store.outbox,
    processed_events=store.processed_events,
    servicers=api.registrations,
)
