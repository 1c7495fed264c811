"""A sync run as a Temporal workflow (deterministic: workflow APIs only).

One Temporal schedule per job (`integration/sync/<tenant>/<job>`, see
`sync_schedules`) starts `SyncJobRun` on the job's interval or cron; RunSyncJob
starts it at once for a run it has already recorded. The one activity reads the
source page by page, each page committed with its events and the cursor; a
source failure is recorded on the run (FAILED) rather than raised, so Temporal
retries only what failed around it (the database, a crashed worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

RUN_WORKFLOW = "integration.SyncJobRun"
RUN_ACTIVITY = "integration.run_sync"
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=1), maximum_attempts=5
)


@dataclass
class SyncInput:
    tenant: str
    sync_job_id: str
    trigger: int  # SyncTrigger
    run_id: str = ""  # a run RunSyncJob recorded; empty = the schedule's (the activity records it)
    triggered_by: str = ""
    resync_since: str = ""  # ISO-8601, full re-sync only


@dataclass
class SyncOutcome:
    run_id: str = ""
    state: int = 0  # SyncRunState; 0 when nothing ran (paused, connector disabled)
    fetched: int = 0
    skipped: str = ""


@workflow.defn(name=RUN_WORKFLOW)
class SyncJobRunWorkflow:
    @workflow.run
    async def run(self, inp: SyncInput) -> SyncOutcome:
        outcome: SyncOutcome = await workflow.execute_activity(
            RUN_ACTIVITY,
            inp,
            result_type=SyncOutcome,
            start_to_close_timeout=timedelta(minutes=15),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        return outcome


__all__ = ["RUN_ACTIVITY", "RUN_WORKFLOW", "SyncInput", "SyncJobRunWorkflow", "SyncOutcome"]
