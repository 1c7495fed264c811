"""Sync jobs over gRPC on a real Temporal dev server: one schedule per job that follows the job's
pause and its connector's state, RunSyncJob through the worker, runs visible, delete removes it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.service import RPCError
from temporalio.worker import Worker

from deploy.local.infra import free_port
from kit.auth import TokenVerifier
from kit.db import Database
from kit.grpc.server import GrpcServer
from kit.migrations import upgrade_to_head
from kit.net import OutboundPolicy, SafeClient
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import integration_service_pb2_grpc
from salesops.integration.v1 import sync_pb2 as s
from services.integration import api, demo_erp
from services.integration.sync_activities import SyncActivities
from services.integration.sync_schedules import schedule_id
from services.integration.sync_workflows import SyncJobRunWorkflow
from tests.integration.conftest import CONFIG, Integration, grpc_settings
from tests.integration.test_stock import erp_connector


@pytest.fixture
async def stack(
    sqlite_url: str, temporal_dev: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Integration, Any, demo_erp.ErpData]]:
    monkeypatch.setenv("SALESOPS_OUTBOUND_ALLOW", "127.0.0.1")
    db = Database(sqlite_url, pool_size=20)
    await upgrade_to_head("integration", db)
    queue = f"sync-{uuid.uuid4().hex[:8]}"
    rt = SimpleNamespace(db=db, temporal=temporal_dev.client, settings=SimpleNamespace(task_queue=queue))
    server = GrpcServer("integration", grpc_settings(), TokenVerifier(CONFIG), api.registrations(rt))  # type: ignore[arg-type]
    await server.start()
    channel = grpc.aio.insecure_channel(server.address)
    acts = SyncActivities(db)
    acts._client = SafeClient(OutboundPolicy.parse("127.0.0.1"))
    erp = demo_erp.demo_data()
    async with (
        demo_erp.serve(erp, free_port()) as url,
        Worker(temporal_dev.client, task_queue=queue, workflows=[SyncJobRunWorkflow], activities=acts.all()),
    ):
        stub = integration_service_pb2_grpc.IntegrationServiceStub(channel)
        integration = Integration(db, stub, server.address)
        await integration.call("CreateConnector", pb.CreateConnectorRequest(connector=erp_connector(url)))
        try:
            yield integration, temporal_dev.client, erp
        finally:
            await channel.close(None)
            await server.stop(0)
            await db.dispose()


async def _paused(client: Any, job: str) -> bool:
    described = await client.get_schedule_handle(schedule_id("demo", job)).describe()
    return bool(described.schedule.state.paused)


async def _finished(integration: Integration, trigger: int) -> s.SyncRun:
    """The job's run of this trigger once it ended (polled, generous limit)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs: list[s.SyncRun] = list(
            (await integration.call("ListSyncRuns", pb.ListSyncRunsRequest(sync_job_id="job-ship"))).runs
        )
        done = [r for r in runs if r.trigger == trigger and r.state != s.SYNC_RUN_STATE_RUNNING]
        if done:
            return done[0]
        await asyncio.sleep(0.1)
    raise AssertionError("no finished run")


async def test_a_job_schedule_follows_pause_and_connector_and_runs_on_demand(stack: Any) -> None:
    integration, client, _erp = stack
    job = s.SyncJob(
        sync_job_id="job-ship",
        connector_id="erp-1",
        data_kind=s.SYNC_DATA_KIND_SHIPMENTS,
        schedule=s.SyncSchedule(interval=Duration(seconds=3600)),
    )
    made = (await integration.call("CreateSyncJob", pb.CreateSyncJobRequest(sync_job=job))).sync_job
    assert made.status == s.SYNC_JOB_STATUS_NEVER_RUN
    assert await _paused(client, "job-ship")  # the connector is still disabled
    await integration.call("EnableConnector", pb.EnableConnectorRequest(connector_id="erp-1"))
    assert not await _paused(client, "job-ship")
    got = (await integration.call("GetSyncJob", pb.GetSyncJobRequest(sync_job_id="job-ship"))).sync_job
    assert got.HasField("next_run_time")
    # The schedule's own action (fired now rather than in an hour) runs the job.
    await client.get_schedule_handle(schedule_id("demo", "job-ship")).trigger()
    scheduled = await _finished(integration, s.SYNC_TRIGGER_SCHEDULE)
    assert scheduled.state == s.SYNC_RUN_STATE_SUCCEEDED and scheduled.records_fetched == 5
    got = (await integration.call("GetSyncJob", pb.GetSyncJobRequest(sync_job_id="job-ship"))).sync_job

    paused = s.SyncJob(sync_job_id="job-ship", paused=True, etag=got.etag)
    await integration.call(
        "UpdateSyncJob", pb.UpdateSyncJobRequest(sync_job=paused, update_mask=FieldMask(paths=["paused"]))
    )
    assert await _paused(client, "job-ship")
    got = (await integration.call("GetSyncJob", pb.GetSyncJobRequest(sync_job_id="job-ship"))).sync_job
    assert not got.HasField("next_run_time")

    # A paused job still runs by hand; one run at a time.
    started = (await integration.call("RunSyncJob", pb.RunSyncJobRequest(sync_job_id="job-ship"))).run
    assert started.state in (s.SYNC_RUN_STATE_RUNNING, s.SYNC_RUN_STATE_SUCCEEDED)
    deadline = time.monotonic() + 60
    run = started
    while run.state == s.SYNC_RUN_STATE_RUNNING and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        run = (await integration.call("GetSyncRun", pb.GetSyncRunRequest(run_id=started.run_id))).run
    assert run.state == s.SYNC_RUN_STATE_SUCCEEDED, run
    # Incremental: the schedule's run took the five shipments, this one finds nothing new.
    assert run.records_fetched == 0 and run.source_exhausted
    listed = await integration.call("ListSyncRuns", pb.ListSyncRunsRequest(sync_job_id="job-ship"))
    assert [r.run_id for r in listed.runs] == [run.run_id, scheduled.run_id]  # newest first
    assert scheduled.events_emitted == 5
    got = (await integration.call("GetSyncJob", pb.GetSyncJobRequest(sync_job_id="job-ship"))).sync_job
    assert got.status == s.SYNC_JOB_STATUS_IDLE and got.cursor.endswith("|SHP-0005")

    await integration.call("DeleteSyncJob", pb.DeleteSyncJobRequest(sync_job_id="job-ship"))
    with pytest.raises(RPCError):
        await client.get_schedule_handle(schedule_id("demo", "job-ship")).describe()
