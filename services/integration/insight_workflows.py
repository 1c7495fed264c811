"""The weekly keyword digest (Temporal workflow code: deterministic, workflow APIs only).

A Temporal schedule per tenant (`integration/keyword-digest/<tenant>`, Monday 08:00
in the tenant's zone, see `insight_activities`) starts `WeeklyKeywordDigest`; one
activity makes the previous week's digests through `keyword_digests.make_weekly`
(one per org subtree and week, under a unique key: a retry makes none twice). The
clock is the workflow's. An hourly schedule runs `EnsureKeywordDigestSchedules`,
which gives every tenant with conversations its schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from kit import schedules
from kit.schedules import KeeperInput

WEEKLY = "integration.WeeklyKeywordDigest"
ENSURE = "integration.EnsureKeywordDigestSchedules"
MAKE = "integration.make_keyword_digests"
RECONCILE = "integration.ensure_keyword_digest_schedules"
RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=5))


@dataclass
class DigestInput:
    tenant: str


@dataclass
class MakeInput:
    tenant: str
    at: str  # ISO-8601 UTC: the workflow's clock when it ran


@dataclass
class Made:
    digest_ids: list[str] = field(default_factory=list)


@workflow.defn(name=WEEKLY)
class WeeklyKeywordDigestWorkflow:
    @workflow.run
    async def run(self, inp: DigestInput) -> Made:
        made: Made = await workflow.execute_activity(
            MAKE,
            MakeInput(inp.tenant, workflow.now().isoformat()),
            result_type=Made,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RETRY,
        )
        return made


@workflow.defn(name=ENSURE)
class EnsureKeywordDigestSchedulesWorkflow:
    @workflow.run
    async def run(self, inp: KeeperInput) -> int:
        return await schedules.run_keeper(RECONCILE, inp)


WORKFLOWS = (WeeklyKeywordDigestWorkflow, EnsureKeywordDigestSchedulesWorkflow)
