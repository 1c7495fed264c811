"""How the knowledge service plugs into the kit runtime."""

from __future__ import annotations

from kit.runtime import ServiceSpec
from services.knowledge import api, consumers, seed, store

SPEC = ServiceSpec(
    name="knowledge",
    metadata=store.metadata,
    outbox=store.outbox,
    processed_events=store.processed_events,
    servicers=api.registrations,
    # Pipeline's deal events: the deal projection (industry, stages reached, outcome) the lift reads.
    consumers=(consumers.DEALS_CONSUMER,),
    # 25 SOP cards over three industries and the demo stage model, through the API.
    demo_seed=seed.demo_seed,
)
