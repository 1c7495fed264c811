"""Temporal workflows of outbound webhooks: deterministic, workflow APIs only.

One DeliveryWorkflow per delivery row (id `webhook-delivery-<tenant>-<delivery id>`):
an attempt is an activity that signs, posts, records the attempt and says what
comes next; the wait between attempts is a durable timer, so the schedule
(up to 24 h between tries, 3 days in all) survives restarts of anything. The sweep
(a Temporal schedule) starts workflows for rows made while Temporal was away.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

ATTEMPT = "integration.attempt_webhook_delivery"
SWEEP = "integration.start_unclaimed_deliveries"
# The activity itself is bounded by the subscription's timeout (<= 30 s) plus two short transactions.
_ACTIVITY_TIMEOUT = timedelta(seconds=90)
# Infrastructure failures (database away) are retried by Temporal; answers from the partner never are.
_INFRA_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=5)
)


def workflow_id(tenant: str, delivery_id: str) -> str:
    return f"webhook-delivery-{tenant}-{delivery_id}"


@dataclass
class DeliveryRef:
    tenant: str
    delivery_id: str


@dataclass
class AttemptInput:
    tenant: str
    delivery_id: str
    at: str  # workflow time (RFC 3339): the attempt's clock, so skipped time in tests is consistent


@dataclass
class AttemptStep:
    done: bool
    wait_seconds: float = 0.0
    state: str = ""


# Not sandboxed: only workflow APIs below, and building a sandbox (re-importing this module) was
# the largest single CPU cost of a delivery in a burst of thousands (as for the leads watches).
@workflow.defn(name="integration.WebhookDelivery", sandboxed=False)
class DeliveryWorkflow:
    @workflow.run
    async def run(self, ref: DeliveryRef) -> str:
        while True:
            step: AttemptStep = await workflow.execute_activity(
                ATTEMPT,
                AttemptInput(ref.tenant, ref.delivery_id, workflow.now().isoformat()),
                result_type=AttemptStep,
                start_to_close_timeout=_ACTIVITY_TIMEOUT,
                retry_policy=_INFRA_RETRY,
            )
            if step.done:
                return step.state
            await workflow.sleep(timedelta(seconds=step.wait_seconds))


@workflow.defn(name="integration.WebhookDeliverySweep", sandboxed=False)
class SweepWorkflow:
    @workflow.run
    async def run(self) -> int:
        started: int = await workflow.execute_activity(
            SWEEP, start_to_close_timeout=timedelta(minutes=5), retry_policy=RetryPolicy(maximum_attempts=3)
        )
        return started
