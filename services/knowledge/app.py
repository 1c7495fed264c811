"""How the knowledge service plugs into the kit runtime."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kit.runtime import Runtime, ServiceSpec
from services.knowledge import (
    api,
    consumers,
    duty_activities,
    duty_consumers,
    duty_workflows,
    iteration_activities,
    iteration_workflows,
    points_consumer,
    seed,
    seed_outcomes,
    store,
)


def _activities(rt: Runtime) -> Sequence[Callable[..., Any]]:
    return [
        *duty_activities.DutyActivities(rt.db).all(),  # type: ignore[list-item]
        *iteration_activities.build(rt),
    ]


SPEC = ServiceSpec(
    name="knowledge",
    metadata=store.metadata,
    outbox=store.outbox,
    processed_events=store.processed_events,
    servicers=api.registrations,
    # One durable timer per feedback duty: reminders before the deadline, OVERDUE at it.
    workflows=(
        duty_workflows.FeedbackDutyWorkflow,
        # The monthly iteration (a schedule per tenant, its zone) and the hourly schedule keeper.
        iteration_workflows.MonthlyIterationWorkflow,
        iteration_workflows.EnsureIterationSchedulesWorkflow,
    ),
    activities=_activities,
    # Pipeline's deal events: the deal projection (industry, stages reached, outcome) the lift reads.
    consumers=(
        consumers.DEALS_CONSUMER,
        # Our CardUsed / FeedbackRecorded start or wake each duty's timer (signal-with-start).
        duty_consumers.DUTY_CONSUMER,
        # Our CardUsed / FeedbackRecorded award points to the contributor of a LIGHT card (once per event).
        points_consumer.POINTS_CONSUMER,
    ),
    worker_startup=(iteration_activities.ensure_schedules,),
    # 25 SOP cards over three industries and the demo stage model, through the API.
    demo_seed=seed.demo_seed,
    # Past deals with card uses, feedback and outcomes (lift on first start), and uses this week.
    demo_backfill=seed_outcomes.demo_history,
)
