"""How the pipeline service plugs into the kit runtime."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kit.runtime import Runtime, ServiceSpec
from services.pipeline import (
    api,
    consumers,
    reconciliation_activities,
    reconciliation_workflows,
    seed,
    store,
)


def _activities(rt: Runtime) -> Sequence[Callable[..., Any]]:
    return [*reconciliation_activities.build(rt)]


SPEC = ServiceSpec(
    name="pipeline",
    metadata=store.metadata,
    outbox=store.outbox,
    processed_events=store.processed_events,
    servicers=api.registrations,
    # Each deal's reconciliation timer (payment terms, a won deal's contract grace).
    workflows=(reconciliation_workflows.ReconciliationWorkflow,),
    activities=_activities,
    consumers=(
        # Converted leads become deals (idempotent: one deal per lead); follow-ups feed the customer view.
        consumers.LEADS_CONSUMER,
        # Pipeline's own fact and outcome events arm each deal's reconciliation timer.
        reconciliation_activities.RECONCILIATION_CONSUMER,
    ),
    demo_seed=seed.demo_seed,
)
