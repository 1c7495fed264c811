"""How the integration service plugs into the kit runtime."""

from __future__ import annotations

from kit.runtime import ServiceSpec
from services.integration import api, insight_wiring, outbound_wiring, seed, store, sync_wiring

SPEC = ServiceSpec(
    name="integration",
    metadata=store.metadata,
    outbox=store.outbox,
    processed_events=store.processed_events,
    servicers=api.registrations,
    # Outbound webhooks: one workflow per delivery, and the sweep that starts rows Temporal missed.
    # Insights: the weekly keyword digest per tenant (a Temporal schedule each).
    workflows=[*outbound_wiring.WORKFLOWS, *sync_wiring.WORKFLOWS, *insight_wiring.WORKFLOWS],
    activities=lambda rt: [
        *outbound_wiring.activities(rt),
        *sync_wiring.activities(rt),
        *insight_wiring.activities(rt),
    ],
    # Every service's events fan out to the matching outbound subscriptions; insights learn
    # who owns which lead and deal from leads' and pipeline's.
    consumers=[*outbound_wiring.CONSUMERS, *insight_wiring.CONSUMERS],
    worker_options=outbound_wiring.WORKER_OPTIONS,
    worker_startup=[
        outbound_wiring.sweep_schedule,
        *sync_wiring.WORKER_STARTUP,
        *insight_wiring.WORKER_STARTUP,
    ],
    # Scheduled sync's demo source: a loopback ERP in embedded mode (sync_wiring).
    background=[*sync_wiring.background()],
    # A loopback "demo finance / ERP" connector, enabled, mapping payments, invoices, contracts, shipments.
    demo_seed=seed.demo_seed,
)
