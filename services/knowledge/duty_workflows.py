"""The feedback duty's durable timer: Temporal workflow code, deterministic, workflow APIs only.

One workflow per duty (`knowledge-duty/<tenant>/<duty_id>`), started or woken by
signal-with-start from our own CardUsed / FeedbackRecorded events (duty_consumers.py).
It asks the duty for its next reminder, sleeps until then (a durable timer), and
fires it: reminders before the deadline, OVERDUE at it, as the tenant's offsets say.
Feedback wakes it; the next read finds nothing left and the workflow completes.
Deadlines are computed in the activities (duty_activities.py), never here.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

WORKFLOW_NAME = "KnowledgeFeedbackDuty"
SIGNAL = "changed"
NEXT = "knowledge.duty_next"
FIRE = "knowledge.duty_fire"


def workflow_id(tenant: str, duty_id: str) -> str:
    return f"knowledge-duty/{tenant}/{duty_id}"


@dataclass
class DutyInput:
    tenant: str
    duty_id: str


@dataclass
class Timer:
    number: int = 0  # the reminder's number; 0 = nothing left to wait for
    at: str = ""  # ISO-8601 UTC


@dataclass
class FireInput:
    tenant: str
    duty_id: str
    number: int
    at: str
    now: str = ""  # the workflow's clock at firing: reminders already overtaken are skipped


# Not sandboxed: only workflow APIs below (as the leads watch), cheap for many open duties.
@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class FeedbackDutyWorkflow:
    def __init__(self) -> None:
        self._changed = False

    @workflow.signal(name=SIGNAL)
    def changed(self) -> None:
        self._changed = True

    async def _activity(self, name: str, arg: DutyInput | FireInput) -> Timer:
        found: Timer = await workflow.execute_activity(
            name,
            arg,
            result_type=Timer,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
            ),
        )
        return found

    @workflow.run
    async def run(self, inp: DutyInput) -> None:
        timer: Timer | None = None  # None = ask the duty for its next reminder
        for _ in range(50):  # bounded history: continue as new after 50 rounds
            if timer is None:
                self._changed = False
                timer = await self._activity(NEXT, inp)
            if not timer.number:
                if self._changed:
                    timer = None
                    continue
                return  # rated, or every reminder went out
            delay = (datetime.fromisoformat(timer.at) - workflow.now()).total_seconds()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(lambda: self._changed, timeout=timedelta(seconds=delay))
                if self._changed:
                    timer = None
                    continue
            self._changed = False
            # Firing returns the duty's next reminder, saving a round trip.
            fire = FireInput(inp.tenant, inp.duty_id, timer.number, timer.at, workflow.now().isoformat())
            timer = await self._activity(FIRE, fire)
            if self._changed:
                timer = None
        workflow.continue_as_new(inp)
