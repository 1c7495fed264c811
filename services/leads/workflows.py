"""Temporal workflow code of the leads service: deterministic, workflow APIs only.

The activities they call (and all I/O) live in activities.py.

No `from __future__ import annotations` here: the SDK decodes every activity input and result into
these dataclasses with typing.get_type_hints, which compiles string annotations anew on each call
(about half of a decode's CPU: two decodes per fire in a burst of reminders).
"""

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

WORKFLOW_NAME = "LeadWatch"
SIGNAL = "changed"
REGRADE_WORKFLOW = "RegradeOpenLeads"
LOCAL_ACTIVITIES_PATCH = "watch-local-activities"


def workflow_id(tenant: str, lead_id: str) -> str:
    return f"lead-sla/{tenant}/{lead_id}"


def regrade_workflow_id(tenant: str, rules_version: int) -> str:
    """One re-grade per tenant and grading rules version: a repeated start is harmless."""
    return f"lead-regrade/{tenant}/{rules_version}"


@dataclass
class WatchInput:
    tenant: str
    lead_id: str


@dataclass
class Timer:
    kind: str = ""
    at: str = ""  # ISO-8601 UTC; "" = nothing left to watch
    # The worker's clock when the activity answered (ISO-8601 UTC; "" in histories recorded before it).
    # A local activity runs inside the workflow task, and when activities queue in a busy worker
    # workflow.now() lags this answer by the wait: a delay taken from it made the timer fire late by the
    # worker's backlog (arming under load: p50 0.8 s; tests/leads/test_watch_timer_clock.py).
    now: str = ""


@dataclass
class FireInput:
    tenant: str
    lead_id: str
    kind: str
    at: str


def _clock(timer: Timer) -> datetime:
    """The time a timer's delay is counted from: the activity's answer (recorded in the history, so a
    replay computes the same delay), never earlier than the workflow task's start."""
    now = workflow.now()
    return max(now, datetime.fromisoformat(timer.now)) if timer.now else now


# Not sandboxed: the code below uses only workflow APIs, and re-importing modules per run
# (the sandbox) dominated the cost of thousands of open watches.
@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class LeadWatchWorkflow:
    def __init__(self) -> None:
        self._changed = False

    @workflow.signal(name=SIGNAL)
    def changed(self) -> None:
        self._changed = True

    async def _activity(self, name: str, arg: WatchInput | FireInput) -> Timer:
        """Both activities are short, idempotent reads or re-checked writes: run them as local activities
        (in the worker that ran the workflow task, no activity task through the server), which cut the
        server round trips per timer from three to one; a burst of due reminders waited on those
        (bench/bench_sla.py). Runs recorded before the patch replay with regular activities."""
        timeout = timedelta(seconds=30)
        retry = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
        found: Timer
        if workflow.patched(LOCAL_ACTIVITIES_PATCH):
            found = await workflow.execute_local_activity(
                name, arg, result_type=Timer, start_to_close_timeout=timeout, retry_policy=retry
            )
        else:
            found = await workflow.execute_activity(
                name, arg, result_type=Timer, start_to_close_timeout=timeout, retry_policy=retry
            )
        return found

    @workflow.run
    async def run(self, inp: WatchInput) -> None:
        timer: Timer | None = None  # None = ask the lead for its next timer
        for _ in range(100):  # bounded history: continue as new after 100 rounds
            if timer is None:
                self._changed = False
                timer = await self._activity("leads.watch_next", inp)
            if not timer.kind:
                if self._changed:
                    timer = None
                    continue
                return
            delay = (datetime.fromisoformat(timer.at) - _clock(timer)).total_seconds()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(lambda: self._changed, timeout=timedelta(seconds=delay))
                if self._changed:
                    timer = None
                    continue
            # Firing returns the lead's next timer, saving a round trip per timer.
            self._changed = False
            timer = await self._activity(
                "leads.watch_fire", FireInput(inp.tenant, inp.lead_id, timer.kind, timer.at)
            )
            if self._changed:
                timer = None
        workflow.continue_as_new(inp)


@dataclass
class RegradeInput:
    tenant: str
    rules_version: int  # the grading rules version that asked for the re-grade
    after: str = ""  # lead id the next batch starts after
    batch_size: int = 500


@dataclass
class RegradeBatch:
    changed: int
    last: str  # "" when no open lead is left


@workflow.defn(name=REGRADE_WORKFLOW, sandboxed=False)
class RegradeOpenLeadsWorkflow:
    """Re-grade a tenant's open leads with new grading rules, one batch (one transaction) per activity.

    Survives process restarts (the API answers before it runs); continues as new every 50 batches to
    keep its history short. Returns the number of leads whose grade or score changed."""

    @workflow.run
    async def run(self, inp: RegradeInput) -> int:
        changed = 0
        retry = RetryPolicy(
            initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=20
        )
        for _ in range(50):
            batch: RegradeBatch = await workflow.execute_activity(
                "leads.regrade_batch",
                inp,
                result_type=RegradeBatch,
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=retry,
            )
            changed += batch.changed
            if not batch.last:
                return changed
            inp = RegradeInput(inp.tenant, inp.rules_version, batch.last, inp.batch_size)
        workflow.continue_as_new(inp)
