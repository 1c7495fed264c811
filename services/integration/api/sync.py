"""Sync jobs (admins), their runs, lag alerts (admins, and reps asked to explain)."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from temporalio.service import RPCError

from kit.errors import Aborted, InvalidArgument, Unavailable
from kit.grpc import context as call
from kit.resources import PageRequest, UnitOfWork
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import sync_pb2 as s
from services.integration import sync_alerts, sync_jobs, sync_runs, sync_schedules
from services.integration.access import require_admin
from services.integration.api.base import ApiBase, Ctx, now
from services.integration.repositories.sync import SyncJobs, SyncLagAlerts, SyncLagRequests, SyncRuns
from services.integration.store import ConnectorRow
from services.integration.store_sync import SyncJobRow
from services.integration.sync_presenters import SyncJobPresenter, present_alert, present_run
from services.integration.sync_workflows import SyncInput, SyncJobRunWorkflow

log = logging.getLogger("salesops.integration.sync")
PRESENT = SyncJobPresenter()
DEFAULT_ALERT_STATES = (s.LAG_ALERT_STATE_OPEN, s.LAG_ALERT_STATE_EXPLAINED)


class SyncApi(ApiBase):
    async def _schedule(self, tenant: str, job: SyncJobRow, conn: ConnectorRow) -> None:
        """After the commit: the job's schedule as the row says. A retry of the call repairs a miss."""
        try:
            await sync_schedules.ensure(
                self.rt.temporal, self.rt.settings.task_queue, sync_schedules.Wanted.of(tenant, job, conn)
            )
        except (RPCError, Unavailable, AttributeError) as exc:  # no engine yet: the worker's start repairs it
            log.warning("sync job %s saved, its schedule not: %s", job.sync_job_id, exc)
            raise Unavailable(
                "the job is saved; its schedule is not yet: retry", reason="SCHEDULE_PENDING"
            ) from exc

    async def CreateSyncJob(self, request: pb.CreateSyncJobRequest, context: Ctx) -> pb.CreateSyncJobResponse:
        who = call.principal()
        require_admin(who)
        at = now()
        job, conn = await self.write(
            who, lambda uow: sync_jobs.create_sync_job(uow, who, request.sync_job, at)
        )
        await self._schedule(who.tenant, job, conn)
        return pb.CreateSyncJobResponse(sync_job=PRESENT.present(who, job, now()))

    async def GetSyncJob(self, request: pb.GetSyncJobRequest, context: Ctx) -> pb.GetSyncJobResponse:
        who = call.principal()
        require_admin(who)
        async with self.read(who) as uow:
            job = await SyncJobs(uow).get(request.sync_job_id)
        next_run = None
        with contextlib.suppress(Unavailable, AttributeError):  # no workflow engine: the rest still answers
            next_run = await sync_schedules.next_run(self.rt.temporal, who.tenant, job.sync_job_id)
        return pb.GetSyncJobResponse(sync_job=PRESENT.present(who, job, now(), next_run))

    async def ListSyncJobs(self, request: pb.ListSyncJobsRequest, context: Ctx) -> pb.ListSyncJobsResponse:
        who = call.principal()
        require_admin(who)
        page = PageRequest.parse(request.page_size, request.page_token)
        async with self.read(who) as uow:
            found = await SyncJobs(uow).page(
                request.connector_id, request.data_kind, request.lagging_only, page
            )
        at = now()
        return pb.ListSyncJobsResponse(
            sync_jobs=[PRESENT.present(who, r, at) for r in found.items],
            next_page_token=found.next_page_token,
        )

    async def UpdateSyncJob(self, request: pb.UpdateSyncJobRequest, context: Ctx) -> pb.UpdateSyncJobResponse:
        who = call.principal()
        require_admin(who)
        at = now()
        job, conn = await self.write(
            who, lambda uow: sync_jobs.update_sync_job(uow, who, request.sync_job, request.update_mask, at)
        )
        await self._schedule(who.tenant, job, conn)
        return pb.UpdateSyncJobResponse(sync_job=PRESENT.present(who, job, now()))

    async def DeleteSyncJob(self, request: pb.DeleteSyncJobRequest, context: Ctx) -> pb.DeleteSyncJobResponse:
        who = call.principal()
        require_admin(who)
        at = now()
        await self.write(
            who, lambda uow: sync_jobs.delete_sync_job(uow, who, request.sync_job_id, request.etag, at)
        )
        try:
            await sync_schedules.remove(self.rt.temporal, who.tenant, request.sync_job_id)
        except RPCError as exc:  # a leftover schedule finds no job and does nothing
            log.warning("sync job %s deleted, its schedule not: %s", request.sync_job_id, exc)
        return pb.DeleteSyncJobResponse()

    async def RunSyncJob(self, request: pb.RunSyncJobRequest, context: Ctx) -> pb.RunSyncJobResponse:
        who = call.principal()
        require_admin(who)
        at = now()
        since = None
        if request.full_resync:
            if not request.HasField("resync_since"):
                raise InvalidArgument.field("resync_since", "required with full_resync")
            since = request.resync_since.ToDatetime(tzinfo=at.tzinfo)
            if since < at - timedelta(days=366) or since > at:
                raise InvalidArgument.field("resync_since", "in the past year")
        trigger = s.SYNC_TRIGGER_RESYNC if request.full_resync else s.SYNC_TRIGGER_MANUAL

        async def begin(uow: UnitOfWork) -> tuple[object, sync_runs.Plan]:
            return await sync_runs.begin(
                uow, request.sync_job_id, trigger, who.user_id, at, resync_since=since
            )

        try:
            run, plan = await self.write(who, begin)
        except Aborted:  # a concurrent RunSyncJob started one first: that run is the answer
            run, plan = await self.write(who, begin)
        if plan.new:
            inp = SyncInput(who.tenant, request.sync_job_id, trigger, plan.run_id, who.user_id)
            try:
                await self.rt.temporal.start_workflow(
                    SyncJobRunWorkflow.run,
                    inp,
                    id=f"integration-sync/{who.tenant}/{request.sync_job_id}/{plan.run_id}",
                    task_queue=self.rt.settings.task_queue,
                )
            except (RPCError, Unavailable) as exc:
                await self.write(
                    who,
                    lambda uow: sync_runs.fail(
                        uow, plan.run_id, "the workflow engine did not start it", 14, now()
                    ),
                )
                raise Unavailable(
                    "the run could not be started; retry", reason="WORKFLOW_UNAVAILABLE"
                ) from exc
        return pb.RunSyncJobResponse(run=present_run(run))  # type: ignore[arg-type]

    async def GetSyncRun(self, request: pb.GetSyncRunRequest, context: Ctx) -> pb.GetSyncRunResponse:
        who = call.principal()
        require_admin(who)
        async with self.read(who) as uow:
            run = await SyncRuns(uow).get(request.run_id)
        return pb.GetSyncRunResponse(run=present_run(run))

    async def ListSyncRuns(self, request: pb.ListSyncRunsRequest, context: Ctx) -> pb.ListSyncRunsResponse:
        who = call.principal()
        require_admin(who)
        page = PageRequest.parse(request.page_size, request.page_token)
        async with self.read(who) as uow:
            found = await SyncRuns(uow).page(
                request.sync_job_id, request.connector_id, list(request.states), page
            )
        return pb.ListSyncRunsResponse(
            runs=[present_run(r, full=False) for r in found.items], next_page_token=found.next_page_token
        )

    async def GetSyncLagAlert(
        self, request: pb.GetSyncLagAlertRequest, context: Ctx
    ) -> pb.GetSyncLagAlertResponse:
        who = call.principal()
        async with self.read(who) as uow:
            alert = await sync_alerts.visible_alert(uow, who, request.alert_id)
            reqs = (await SyncLagRequests(uow).of_alerts([alert.alert_id]))[alert.alert_id]
        return pb.GetSyncLagAlertResponse(alert=present_alert(who, alert, reqs))

    async def ListSyncLagAlerts(
        self, request: pb.ListSyncLagAlertsRequest, context: Ctx
    ) -> pb.ListSyncLagAlertsResponse:
        who = call.principal()
        page = PageRequest.parse(request.page_size, request.page_token)
        user = who.user_id if request.requested_user_id == "me" else request.requested_user_id
        if not who.is_admin:
            user = who.user_id  # reps always get their own
        states = list(request.states) or list(DEFAULT_ALERT_STATES)
        async with self.read(who) as uow:
            found = await SyncLagAlerts(uow).page(
                states, user, request.sync_job_id, request.connector_id, page
            )
            reqs = await SyncLagRequests(uow).of_alerts([a.alert_id for a in found.items])
        return pb.ListSyncLagAlertsResponse(
            alerts=[present_alert(who, a, reqs[a.alert_id]) for a in found.items],
            next_page_token=found.next_page_token,
        )

    async def ExplainSyncLag(
        self, request: pb.ExplainSyncLagRequest, context: Ctx
    ) -> pb.ExplainSyncLagResponse:
        who = call.principal()
        at = now()
        alert = await self.write(
            who, lambda uow: sync_alerts.explain(uow, who, request.alert_id, request.explanation, at)
        )
        async with self.read(who) as uow:
            reqs = (await SyncLagRequests(uow).of_alerts([alert.alert_id]))[alert.alert_id]
        return pb.ExplainSyncLagResponse(alert=present_alert(who, alert, reqs))
