"""Temporal workflow code of the notify service: deterministic, workflow APIs only.

Deliveries (quiet-hours hold, retried attempts), escalation chains and the digest
sweep; the activities they call (and all I/O) live in deliveries.py,
escalation.py and digests.py.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError


@dataclass
class DeliveryRef:
    tenant: str
    delivery_id: str
    hold_until: str = ""  # RFC 3339, empty = now
    max_attempts: int = 6
    initial_backoff_seconds: float = 2.0


@workflow.defn(name="notify.Delivery")
class DeliveryWorkflow:
    @workflow.run
    async def run(self, ref: DeliveryRef) -> str:
        if ref.hold_until:
            wait = datetime.fromisoformat(ref.hold_until) - workflow.now()
            if wait > timedelta(0):
                await workflow.sleep(wait)  # quiet hours: a durable timer, survives restarts
        try:
            return str(
                await workflow.execute_activity(
                    "notify.attempt_delivery",
                    ref,
                    start_to_close_timeout=timedelta(seconds=60),
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(seconds=ref.initial_backoff_seconds),
                        backoff_coefficient=2.0,
                        maximum_interval=timedelta(minutes=10),
                        maximum_attempts=ref.max_attempts,
                    ),
                )
            )
        except ActivityError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.non_retryable:
                return "failed"
            await workflow.execute_activity(
                "notify.give_up_delivery", ref, start_to_close_timeout=timedelta(seconds=30)
            )
            return "failed"


@dataclass
class ChainStep:
    """One level of the chain, copied from the policy when the chain starts."""

    ack_timeout_seconds: float
    role: str = ""  # relative: the holders of this role above the previous level's users
    recipients: bytes = b""  # absolute: a serialized RecipientList, resolved when the step fires
    channels: list[int] = field(default_factory=list)
    priority: int = 0


@dataclass
class ChainRequest:
    tenant: str
    notification_id: str
    initial_timeout_seconds: float
    steps: list[ChainStep] = field(default_factory=list)


@dataclass
class StepRequest:
    tenant: str
    notification_id: str
    level: int
    step: ChainStep | None  # None = the chain is exhausted


@workflow.defn(name="notify.Escalation")
class EscalationWorkflow:
    def __init__(self) -> None:
        self.acknowledged_by = ""

    @workflow.signal
    def acknowledge(self, user_id: str) -> None:
        self.acknowledged_by = user_id or "unknown"

    @workflow.query
    def level_acknowledged(self) -> str:
        return self.acknowledged_by

    @workflow.run
    async def run(self, req: ChainRequest) -> str:
        timeout = timedelta(seconds=req.initial_timeout_seconds)
        steps: list[ChainStep | None] = [*req.steps, None]
        for level, step in enumerate(steps, start=1):
            # A durable timer: a restarted worker resumes the wait where it was.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: bool(self.acknowledged_by), timeout=timeout)
            if self.acknowledged_by:
                return f"acknowledged by {self.acknowledged_by}"
            request = StepRequest(req.tenant, req.notification_id, level, step)
            if step is None:
                await workflow.execute_activity(
                    "notify.exhaust_escalation", request, start_to_close_timeout=timedelta(seconds=30)
                )
                return "exhausted"
            await workflow.execute_activity(
                "notify.escalate",
                request,
                result_type=list[str],
                start_to_close_timeout=timedelta(seconds=60),
            )
            timeout = timedelta(seconds=step.ack_timeout_seconds)
        return "exhausted"


@dataclass
class SweepRequest:
    now: str = ""  # RFC 3339; empty = the activity's clock


@workflow.defn(name="notify.DigestSweep")
class DigestSweepWorkflow:
    @workflow.run
    async def run(self, request: SweepRequest) -> int:
        return int(
            await workflow.execute_activity(
                "notify.send_due_digests",
                request,
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(minutes=2),
            )
        )
