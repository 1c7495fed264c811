"""On a real Temporal dev server (our own, on a free port, state in a file): an approval waiting on its
approvers survives a worker restart and a restart of the Temporal server itself."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest

from deploy.local.infra import Managed, free_port, start_temporal_dev
from kit.auth import TokenVerifier
from kit.config import GrpcSettings
from kit.db import Database
from kit.grpc.server import GrpcServer
from kit.migrations import upgrade_to_head
from kit.temporal import WorkerRunner, build_worker, connect
from salesops.pipeline.v1 import approval_pb2 as ap
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import pipeline_service_pb2_grpc
from services.pipeline import api
from services.pipeline.approval_activities import ApprovalActivities
from services.pipeline.approval_workflows import ApprovalWorkflow
from tests.pipeline.approval_world import World, contract_flow, seed_profiles, states
from tests.pipeline.conftest import CONFIG

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@asynccontextmanager
async def stack(db_url: str, address: str) -> AsyncIterator[tuple[World, SimpleNamespace]]:
    """Pipeline's gRPC server on a free port; `rt.temporal` is swapped when the server restarts."""
    db = Database(db_url, pool_size=20)
    await upgrade_to_head("pipeline", db)
    queue = f"pipeline-approvals-{uuid.uuid4().hex[:8]}"
    rt = SimpleNamespace(
        db=db, temporal=await connect(address, retry_for=60), settings=SimpleNamespace(task_queue=queue)
    )
    settings = GrpcSettings(
        listen=f"127.0.0.1:{free_port()}",
        reflection=False,
        grace_seconds=1.0,
        default_deadline_seconds=60.0,
        max_message_bytes=16 * 1024 * 1024,
        keepalive_time_ms=30_000,
        keepalive_timeout_ms=10_000,
    )
    server = GrpcServer("pipeline", settings, TokenVerifier(CONFIG), api.registrations(rt))  # type: ignore[arg-type]
    await server.start()
    channel = grpc.aio.insecure_channel(server.address)
    w = World(db, None, queue, pipeline_service_pb2_grpc.PipelineServiceStub(channel))  # type: ignore[arg-type]
    try:
        yield w, rt
    finally:
        await channel.close(None)
        await server.stop(0)
        await db.dispose()


def worker(rt: SimpleNamespace) -> WorkerRunner:
    runner = WorkerRunner(
        build_worker(
            rt.temporal,
            rt.settings.task_queue,
            workflows=[ApprovalWorkflow],
            activities=ApprovalActivities(rt.db).all(),
        )
    )
    runner.start()
    return runner


async def approve(w: World, approval_id: str, user: str) -> ap.Approval:
    req = pb.ApproveApprovalStepRequest(approval_id=approval_id, action_id=str(uuid.uuid4()))
    for _ in range(60):  # the server may still be coming back: retry UNAVAILABLE, fail on anything else
        try:
            got: ap.Approval = (await w.call("ApproveApprovalStep", req, user)).approval
            return got
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            await asyncio.sleep(1)
    raise AssertionError(f"{user} could not approve")


async def test_an_approval_survives_a_worker_restart_and_a_temporal_restart(tmp_path: Path) -> None:
    db_file = tmp_path / "temporal.db"
    port = free_port()
    temporal: Managed = start_temporal_dev(db_file, port, log_dir=tmp_path, die_with_parent=True)
    try:
        async with stack(f"sqlite+aiosqlite:///{tmp_path / 'pipeline.db'}", temporal.address) as (w, rt):
            runner = worker(rt)
            await seed_profiles(w)
            await w.flow(contract_flow())
            await w.deal("big")
            a = await w.request("ap-restart", "big")
            assert a.state == ap.APPROVAL_STATE_IN_PROGRESS
            await approve(w, "ap-restart", "legal-1")

            # The worker goes away mid-wait and a new one takes over.
            await runner.stop()
            runner = worker(rt)
            for user in ("legal-2", "fin-1"):
                await approve(w, "ap-restart", user)
            assert states(await w.get("ap-restart"))["legal"] == "APPROVED"

            # The Temporal server itself restarts on the same state file.
            await runner.stop()
            temporal.stop()
            temporal = start_temporal_dev(db_file, port, log_dir=tmp_path, die_with_parent=True)
            rt.temporal = await connect(temporal.address, retry_for=60)
            runner = worker(rt)
            try:
                seen = await w.get("ap-restart")  # by query: the run came back with its history
                assert seen.state == ap.APPROVAL_STATE_IN_PROGRESS
                approvers = [
                    x.actor_user_id for x in seen.history if x.type == ap.APPROVAL_ACTION_TYPE_APPROVE
                ]
                assert approvers == ["legal-1", "legal-2", "fin-1"]
                for user in ("fin-2", "fin-3", "gm-1"):
                    await approve(w, "ap-restart", user)
                done = await w.get("ap-restart")
                assert done.state == ap.APPROVAL_STATE_APPROVED
                assert set(states(done).values()) == {"APPROVED"}
                listed = await w.call("ListApprovals", pb.ListApprovalsRequest(), "admin")
                assert [(x.approval_id, x.state) for x in listed.approvals] == [
                    ("ap-restart", ap.APPROVAL_STATE_APPROVED)
                ]
            finally:
                await runner.stop()
    finally:
        temporal.stop()
