"""How the pipeline service plugs into the kit runtime."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from kit.runtime import Runtime, ServiceSpec
from services.pipeline import (
    api,
    approval_activities,
    approval_workflows,
    consumers,
    discipline_activities,
    discipline_consumers,
    discipline_workflows,
    reconciliation_activities,
    reconciliation_workflows,
    seed,
    seed_history,
    snapshot_activities,
    snapshot_workflows,
    store,
)


def _activities(rt: Runtime) -> Sequence[Callable[..., Any]]:
    timer = discipline_activities.DisciplineActivities(rt.db)
    return [
        *reconciliation_activities.build(rt),
        timer.plan,
        timer.sweep,
        *snapshot_activities.build(rt),
        *approval_activities.build(rt),
    ]


SPEC = ServiceSpec(
    name="pipeline",
    metadata=store.metadata,
    outbox=store.outbox,
    processed_events=store.processed_events,
    servicers=api.registrations,
    # Each deal's reconciliation timer (payment terms, a won deal's contract grace).
    # The tenant's discipline timer: weekly freeze, dwell flags, weekly process health.
    workflows=(
        reconciliation_workflows.ReconciliationWorkflow,
        discipline_workflows.DisciplineWorkflow,
        # The weekly snapshot and call locks (a schedule per tenant), and the hourly schedule keeper.
        snapshot_workflows.WeeklySnapshotWorkflow,
        snapshot_workflows.EnsureSnapshotSchedulesWorkflow,
        # One workflow per approval: decisions are Updates, reminders / escalations / fallbacks timers.
        approval_workflows.ApprovalWorkflow,
        # A lost deal's running approvals cancelled after the DealLost consumer committed.
        approval_workflows.LostDealApprovalsWorkflow,
    ),
    activities=_activities,
    # An approval waits days on its timers and updates: a cache the size of the open approvals lets an
    # update or a due timer run on the cached workflow (sticky) instead of fetching and replaying its
    # history (the SDK's default keeps 1,000; a run's input is about 3 KB of JSON, held as its Run).
    # Activations run one thread per workflow task slot: the SDK's default of 500 threads fought over
    # the GIL with the API and the activities on the same loop under a burst of updates. A burst queues
    # workflow tasks on the sticky queue longer than the SDK's 10 s; past it each went back to the shared
    # queue (a history fetch and a replay). As the leads worker (docs/performance.md "SLA timers, second
    # pass"); bench/bench_approvals.py builds its worker with these.
    worker_options={
        "max_cached_workflows": 5_000,
        "max_concurrent_workflow_tasks": 32,
        "sticky_queue_schedule_to_start_timeout": timedelta(seconds=30),
    },
    consumers=(
        # Converted leads become deals (idempotent: one deal per lead); follow-ups feed the customer view.
        consumers.LEADS_CONSUMER,
        # Integration's payments, contracts, invoices and shipments: the same ingest as IngestFinanceFacts.
        consumers.INTEGRATION_CONSUMER,
        # Pipeline's own fact and outcome events arm each deal's reconciliation timer.
        reconciliation_activities.RECONCILIATION_CONSUMER,
        # Deal events wake the tenant's discipline timer; leads' first responses feed process health.
        discipline_consumers.TIMER_CONSUMER,
        discipline_consumers.RESPONSES_CONSUMER,
        # A forward stage entry starts the stage's on-entry approval flows (on_entry_approval_flow_ids).
        approval_activities.ENTRY_CONSUMER,
    ),
    worker_startup=(discipline_consumers.ensure_timers, snapshot_activities.ensure_schedules),
    demo_seed=seed.demo_seed,
    # Six months of won / lost / pushed deals, snapshots and locked calls: about a minute on SQLite.
    demo_backfill=seed_history.demo_history,
)
