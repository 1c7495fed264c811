"""Demo data of scheduled sync and stock checks (`make run`), through the service's gRPC API, idempotently.

A loopback "demo ERP" connector (`demo-erp`, erp_http) pointing at the demo ERP
the integration service serves in embedded mode (`demo_erp.py`, port
SALESOPS_DEMO_ERP_PORT, default 8097), enabled, and one sync job pulling its
stock levels every 15 minutes (the snapshot CheckStock falls back to), run once
at seed so the first start shows a run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.struct_pb2 import Struct

from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import integration_service_pb2_grpc
from salesops.integration.v1 import sync_pb2 as s
from services.integration import demo_erp

DEMO_ERP_ID = "demo-erp"
DEMO_SYNC_JOB_ID = "demo-erp-stock"


def demo_erp_connector() -> c.Connector:
    settings = Struct()
    settings.update({"base_url": f"http://127.0.0.1:{demo_erp.demo_port()}", "health_path": "/health"})
    return c.Connector(
        connector_id=DEMO_ERP_ID,
        display_name="Demo ERP (loopback)",
        kind=c.CONNECTOR_KIND_ERP,
        provider="erp_http",
        settings=settings,
        secrets={"api_key": demo_erp.DEMO_API_KEY},
        owner_user_id="admin",
    )


def demo_sync_job() -> s.SyncJob:
    return s.SyncJob(
        sync_job_id=DEMO_SYNC_JOB_ID,
        connector_id=DEMO_ERP_ID,
        data_kind=s.SYNC_DATA_KIND_STOCK,
        display_name="Demo ERP / stock",
        schedule=s.SyncSchedule(interval=Duration(seconds=15 * 60)),
        owner_user_id="admin",
    )


async def _created(call: Awaitable[object]) -> None:
    try:
        await call
    except grpc.aio.AioRpcError as exc:  # seeded before (maybe changed by the admin since): leave it
        if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise


async def seed_sync(
    stub: integration_service_pb2_grpc.IntegrationServiceAsyncStub, md: tuple[tuple[str, str], ...]
) -> None:
    await _created(
        stub.CreateConnector(
            pb.CreateConnectorRequest(connector=demo_erp_connector()), metadata=md, timeout=30
        )
    )
    # Enabled before the job is made, so its schedule starts unpaused.
    await stub.EnableConnector(pb.EnableConnectorRequest(connector_id=DEMO_ERP_ID), metadata=md, timeout=30)
    # The job is saved on the first call; UNAVAILABLE means its schedule waits for the workflow
    # engine, and the create (idempotent) is repeated until the schedule is made too.
    for attempt in range(10):
        try:
            await _created(
                stub.CreateSyncJob(pb.CreateSyncJobRequest(sync_job=demo_sync_job()), metadata=md, timeout=30)
            )
            break
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt == 9:
                raise
            await asyncio.sleep(0.5 * (attempt + 1))
    try:
        await stub.RunSyncJob(pb.RunSyncJobRequest(sync_job_id=DEMO_SYNC_JOB_ID), metadata=md, timeout=30)
    except grpc.aio.AioRpcError as exc:  # the schedule runs it within 15 minutes anyway
        if exc.code() != grpc.StatusCode.UNAVAILABLE:
            raise
