"""How the leads service plugs into the kit runtime."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

from kit.events import service_stream
from kit.runtime import ConsumerSpec, Runtime, ServiceSpec
from services.leads import activities, api, consumers, events, seed, seed_history, store, workflows


def _activities(rt: Runtime) -> Sequence[Callable[..., object]]:
    watch = activities.WatchActivities(rt.db)
    regrade = activities.RegradeActivities(rt.db)
    return [watch.next_timer, watch.fire, regrade.regrade_batch]


SPEC = ServiceSpec(
    name="leads",
    metadata=store.metadata,
    outbox=store.outbox,
    processed_events=store.processed_events,
    servicers=api.registrations,
    workflows=(workflows.LeadWatchWorkflow, workflows.RegradeOpenLeadsWorkflow),
    activities=_activities,
    # Every owned lead keeps a watch open for days: a cache the size of the open watches lets a due timer
    # run on the cached workflow (sticky) instead of fetching and replaying its history. Activations run
    # one thread per workflow task slot: the SDK's 500 threads fought over the GIL under a burst and
    # tripped the 2 s deadlock detector (failed workflow tasks, retried late). bench/bench_sla.py measures.
    # 64 slots, not 32: a burst's fires then share transactions of up to 64 (fire_groups.py), and the
    # relay and notify get their events in larger batches: CPU per burst reminder lower in all three
    # processes (bench_sla, 1,000 due in one second, interleaved A/B).
    # A burst of due timers queues its workflow tasks on this worker's sticky queue longer than the SDK's
    # 10 s: each timed out there and was queued again on the shared queue (a history fetch, and a second
    # wait behind the burst). A worker that died leaves its watches' tasks waiting this long instead.
    worker_options={
        "max_cached_workflows": 10_000,
        "max_concurrent_workflow_tasks": 64,
        "sticky_queue_schedule_to_start_timeout": timedelta(seconds=30),
    },
    consumers=(
        # Our own events start or wake each lead's watch workflow (durable: the outbox holds them).
        ConsumerSpec(
            group="leads-watch",
            streams=(service_stream(events.SOURCE),),
            handler=consumers.watch_handler,
            types=events.WATCHED,
            role="worker",
            options={"min_idle": 30.0},
        ),
    ),
    demo_seed=seed.demo_seed,
    # Leads received weeks ago and never touched (the dormant list's demo data), after READY.
    demo_backfill=seed_history.demo_history,
)
