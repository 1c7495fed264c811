"""How the knowledge service plugs into the kit runtime."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kit.runtime import Runtime, ServiceSpec
from services.knowledge import api, consumers, duty_activities, duty_consumers, duty_workflows, seed, store


def _activities(rt: Runtime) -> Sequence[Callable[..., Any]]:
    return [*duty_activities.DutyActivities(rt.db).all()]  # type: ignore[list-item]


SPEC = ServiceSpec(
    name="knowledge",
    metadata=store.metadata,
    outbox=store.outbox,
    processed_events=store.processed_events,
    servicers=api.registrations,
    # One durable timer per feedback duty: reminders before the deadline, OVERDUE at it.
    workflows=(duty_workflows.FeedbackDutyWorkflow,),
    activities=_activities,
    # Pipeline's deal events: the deal projection (industry, stages reached, outcome) the lift reads.
    consumers=(
        consumers.DEALS_CONSUMER,
        # Our CardUsed / FeedbackRecorded start or wake each duty's timer (signal-with-start).
        duty_consumers.DUTY_CONSUMER,
    ),
    # 25 SOP cards over three industries and the demo stage model, through the API.
    demo_seed=seed.demo_seed,
)
