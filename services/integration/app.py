"""How the integration service plugs into the kit runtime."""

from __future__ import annotations

from kit.runtime import ServiceSpec
from services.integration import api, seed, store

SPEC = ServiceSpec(
    name="integration",
    metadata=store.metadata,
    outbox=store.outbox,
    processed_events=store.processed_events,
    servicers=api.registrations,
    # A loopback "demo finance / ERP" connector, enabled, mapping payments, invoices, contracts, shipments.
    demo_seed=seed.demo_seed,
)
