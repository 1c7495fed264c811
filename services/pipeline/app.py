"""How the pipeline service plugs into the kit runtime."""

from __future__ import annotations

from kit.runtime import ServiceSpec
from services.pipeline import api, consumers, seed, store

SPEC = ServiceSpec(
    name="pipeline",
    metadata=store.metadata,
    outbox=store.outbox,
    processed_events=store.processed_events,
    servicers=api.registrations,
    # Converted leads become deals (idempotent: one deal per lead).
    consumers=(consumers.LEADS_CONSUMER,),
    demo_seed=seed.demo_seed,
)
