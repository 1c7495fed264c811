"""Approvals on a real Temporal dev server (in memory, own port), through pipeline's gRPC API on SQLite.

N concurrent approvals (default 1,000; quick 100; SALESOPS_BENCH_APPROVALS overrides) of a flow of three
parallel single-approver steps, each figure against a bare workflow measured in the same run:

- start rate: CreateApproval (the request checked, the deal x flow claim, the workflow started and its
  first steps opened and projected before it answers) per second, as a ratio to bare `start_workflow`
  calls of a workflow waiting on an update. Goal: at least 0.2 of the bare rate.
- last approve -> completed, p99: the third approver's ApproveApprovalStep until it answers with the
  approval APPROVED (the update ran, the quorum settled, the projection and events written); baseline the
  bare workflow's update round trip. Goal: p99 under 2 s.
- rejected (invalid) Update, p99: an approve by someone not assigned, refused by the validator before it
  enters history (PERMISSION_DENIED); baseline a bare update whose validator raises. Goal: p99 under 1 s.

At most 64 calls in flight; every call bounded (60 s); failures (an error, or not the expected outcome)
are counted in the figure. The process's collector is tuned once everything has started, as kit.runtime
tunes a service's (kit.heap.tune_gc); the CPU figures' notes say how much of it was garbage collection.

    .venv/bin/python -m bench.bench_approvals
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from bench.procs import GcClock, py_spy
from bench.procs import cpu_seconds as _cpu_s
from bench.verdict import AT_LEAST, AT_MOST, Figure, Goal

CONCURRENCY = 64
CALL_TIMEOUT = 60.0
TENANT = "bench"
APPROVERS = ("appr-1", "appr-2", "appr-3")


@workflow.defn(name="BenchApprovalBare", sandboxed=False)
class BareWorkflow:
    """The baseline: waits for an update, no activity, no database."""

    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.done)

    @workflow.update
    async def finish(self) -> str:
        self.done = True
        return "ok"

    @workflow.update
    async def refuse(self) -> None:  # never runs: the validator refuses
        return None

    @refuse.validator
    def _refuse(self) -> None:
        raise ApplicationError("not yours", non_retryable=True)


def _server_pid() -> int:
    """The Temporal dev server: the child process WorkflowEnvironment.start_local ran (0 if not found)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, rest = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if "temporal" in head.split("(", 1)[1] and int(rest.split()[1]) == os.getpid():
            return int(stat.parent.name)
    return 0


async def _cpu_of(
    pids: list[int], drive: Awaitable[tuple[float, list[float], int]]
) -> tuple[tuple[float, list[float], int], list[float]]:
    """`drive`'s result and the CPU seconds each of `pids` spent while it ran."""
    before = [_cpu_s(p) for p in pids]
    got = await drive
    return got, [_cpu_s(p) - b for p, b in zip(pids, before, strict=True)]


def _stop(spy: tuple[Any, str] | None) -> None:
    if spy is not None:
        spy[0].send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        spy[0].wait(30)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


async def _bounded(n: int, call: Callable[[int], Awaitable[bool]]) -> tuple[float, list[float], int]:
    """call(i) for i < n, CONCURRENCY in flight: (seconds, per-call latencies, failures). A call fails
    when it raises or returns False."""
    sem = asyncio.Semaphore(CONCURRENCY)
    latencies: list[float] = []
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        async with sem:
            t = time.perf_counter()
            try:
                ok = await asyncio.wait_for(call(i), CALL_TIMEOUT)
            except Exception as exc:
                ok = False
                if failures < 3:
                    print(f"   failed call: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
            if ok:
                latencies.append(time.perf_counter() - t)
            else:
                failures += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - t0, latencies, failures


def _flow() -> Any:
    from salesops.pipeline.v1 import approval_pb2 as ap

    steps = [
        ap.ApprovalStepDefinition(
            step_key=f"s{n}",
            display_name=f"Step {n}",
            mode=ap.STEP_MODE_APPROVAL,
            approvers=ap.ApproverSelector(type=ap.APPROVER_SELECTOR_TYPE_USERS, user_ids=[user]),
            quorum=ap.STEP_QUORUM_ALL,
        )
        for n, user in enumerate(APPROVERS)
    ]
    return ap.ApprovalFlow(
        flow_id="bench_parallel", display_name="Bench", kind=ap.APPROVAL_KIND_OTHER, steps=steps
    )


async def _measure(url: str, n: int) -> list[Figure]:
    import grpc
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.testing import WorkflowEnvironment

    from deploy.local.infra import find_temporal, free_port
    from kit.auth import AuthConfig, TokenMinter, TokenVerifier
    from kit.config import GrpcSettings
    from kit.db import Database
    from kit.grpc.server import GrpcServer
    from kit.heap import tune_gc
    from kit.migrations import upgrade_to_head
    from kit.temporal import WorkerRunner, build_worker
    from salesops.pipeline.v1 import approval_pb2 as ap
    from salesops.pipeline.v1 import pipeline_service_pb2 as pb
    from salesops.pipeline.v1 import pipeline_service_pb2_grpc
    from services.pipeline import api
    from services.pipeline.app import SPEC
    from services.pipeline.approval_activities import ApprovalActivities
    from services.pipeline.approval_workflows import ApprovalWorkflow

    db = Database(url, pool_size=20)
    await upgrade_to_head("pipeline", db)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_temporal(), dev_server_extra_args=["--log-level", "error"]
    )
    queue = f"bench-approvals-{uuid.uuid4().hex[:6]}"
    config = AuthConfig.from_env({})
    minter = TokenMinter(config)
    users = [("admin", "admin"), ("rep-1", "rep"), ("outsider", "rep"), *((a, "approver") for a in APPROVERS)]
    md = {
        u: (("authorization", f"Bearer {minter.mint(u, TENANT, [role], org='east/t1')}"),)
        for u, role in users
    }
    runner = WorkerRunner(
        build_worker(
            env.client,
            queue,
            workflows=[ApprovalWorkflow, BareWorkflow],
            activities=ApprovalActivities(db).all(),
            options=SPEC.worker_options,  # the pipeline worker's own settings
        )
    )
    runner.start()
    rt = SimpleNamespace(db=db, temporal=env.client, settings=SimpleNamespace(task_queue=queue))
    settings = GrpcSettings(
        listen=f"127.0.0.1:{free_port()}",
        reflection=False,
        grace_seconds=1.0,
        default_deadline_seconds=CALL_TIMEOUT,
        max_message_bytes=16 * 1024 * 1024,
        keepalive_time_ms=30_000,
        keepalive_timeout_ms=10_000,
    )
    server = GrpcServer("pipeline", settings, TokenVerifier(config), api.registrations(rt))  # type: ignore[arg-type]
    await server.start()
    tune_gc()  # as kit.runtime does once a service has started (the worker's and the server's process)
    gc_clock = GcClock()
    gc.callbacks.append(gc_clock)
    channel = grpc.aio.insecure_channel(server.address)
    stub = pipeline_service_pb2_grpc.PipelineServiceStub(channel)
    try:
        req = pb.CreateApprovalFlowRequest(approval_flow=_flow())
        await stub.CreateApprovalFlow(req, metadata=md["admin"], timeout=CALL_TIMEOUT)
        run = uuid.uuid4().hex[:6]
        ids = [f"b{run}-{i}" for i in range(n)]

        # Baseline first, then the approvals (the same worker and server serve both).
        async def bare_start(i: int) -> bool:
            await env.client.start_workflow(BareWorkflow.run, id=f"bare-{run}-{i}", task_queue=queue)
            return True

        async def bare_refuse(i: int) -> bool:
            try:
                await env.client.get_workflow_handle(f"bare-{run}-{i}").execute_update(BareWorkflow.refuse)
            except WorkflowUpdateFailedError:
                return True  # refused, as it must be
            return False

        async def bare_finish(i: int) -> bool:
            got = await env.client.get_workflow_handle(f"bare-{run}-{i}").execute_update(BareWorkflow.finish)
            return got == "ok"

        pids = [os.getpid(), _server_pid()]
        (bare_s, _, bare_failed), bare_cpu = await _cpu_of(pids, _bounded(n, bare_start))
        _, bare_refused, bare_refuse_failed = await _bounded(n, bare_refuse)
        (_, bare_updates, bare_update_failed), bare_update_cpu = await _cpu_of(pids, _bounded(n, bare_finish))

        async def create(i: int) -> bool:
            a = ap.Approval(
                approval_id=ids[i], flow_id="bench_parallel", kind=ap.APPROVAL_KIND_OTHER, title=f"Bench {i}"
            )
            got = await stub.CreateApproval(
                pb.CreateApprovalRequest(approval=a), metadata=md["rep-1"], timeout=CALL_TIMEOUT
            )
            return bool(got.approval.state == ap.APPROVAL_STATE_IN_PROGRESS)

        async def wrong_person(i: int) -> bool:
            req = pb.ApproveApprovalStepRequest(approval_id=ids[i], action_id=uuid.uuid4().hex)
            try:
                await stub.ApproveApprovalStep(req, metadata=md["outsider"], timeout=CALL_TIMEOUT)
            except grpc.aio.AioRpcError as exc:
                return exc.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND)
            return False

        def approve_as(user: str, last: bool) -> Callable[[int], Awaitable[bool]]:
            async def call(i: int) -> bool:
                req = pb.ApproveApprovalStepRequest(approval_id=ids[i], action_id=uuid.uuid4().hex)
                got = await stub.ApproveApprovalStep(req, metadata=md[user], timeout=CALL_TIMEOUT)
                want = ap.APPROVAL_STATE_APPROVED if last else ap.APPROVAL_STATE_IN_PROGRESS
                return bool(got.approval.state == want)

            return call

        # SALESOPS_BENCH_PROFILE_PHASE=approve profiles the last approves instead of the starts.
        on_approve = os.environ.get("SALESOPS_BENCH_PROFILE_PHASE") == "approve"
        spy = None if on_approve else py_spy(os.getpid())  # this process: client, API server and worker
        gc_before = gc_clock.total
        (start_s, _, start_failed), start_cpu = await _cpu_of(pids, _bounded(n, create))
        start_gc = gc_clock.total - gc_before
        _stop(spy)
        _, refused, refuse_failed = await _bounded(n, wrong_person)
        first_failed = 0
        for user in APPROVERS[:-1]:
            first_failed += (await _bounded(n, approve_as(user, last=False)))[2]
        spy = py_spy(os.getpid()) if on_approve else None
        gc_before = gc_clock.total
        (_, completed, complete_failed), last_cpu = await _cpu_of(
            pids, _bounded(n, approve_as(APPROVERS[-1], last=True))
        )
        last_gc = gc_clock.total - gc_before
        _stop(spy)
    finally:
        if gc_clock in gc.callbacks:
            gc.callbacks.remove(gc_clock)
        await channel.close(None)
        await server.stop(0)
        await runner.stop()
        await env.shutdown()
        await db.dispose()

    size = f"{n:,}"
    return [
        Figure(
            f"approval starts ({size}, CreateApproval until the first steps are projected)",
            (n - start_failed) / start_s,
            "starts/s",
            baseline=(n - bare_failed) / bare_s,
            baseline_name=f"bare workflow starts ({size})",
            goal=Goal(0.2, AT_LEAST),
            failed=start_failed + bare_failed,
            note=f"{CONCURRENCY} in flight",
        ),
        Figure(
            "approval start CPU, this process (gRPC client, API, worker, activities)",
            start_cpu[0] * 1000 / n,
            "ms CPU/start",
            baseline=bare_cpu[0] * 1000 / n,
            baseline_name="bare workflow start, same process",
            note=f"of which garbage collection {start_gc * 1000 / n:.2f} ms",
        ),
        Figure(
            "approval start CPU, Temporal dev server",
            start_cpu[1] * 1000 / n,
            "ms CPU/start",
            baseline=bare_cpu[1] * 1000 / n,
            baseline_name="bare workflow start",
        ),
        Figure(
            "last approve -> approval completed p99",
            _pct(completed, 0.99),
            "s",
            baseline=_pct(bare_updates, 0.99),
            baseline_name="bare update round trip p99",
            goal=Goal(2.0, AT_MOST, on="value"),
            failed=complete_failed + first_failed + bare_update_failed,
            note=f"p50 {_pct(completed, 0.5):.3f} s; {CONCURRENCY} in flight",
        ),
        Figure(
            "last approve CPU, this process (gRPC client, API, worker, activities)",
            last_cpu[0] * 1000 / n,
            "ms CPU/approve",
            baseline=bare_update_cpu[0] * 1000 / n,
            baseline_name="bare update round trip, same process",
            note=f"of which garbage collection {last_gc * 1000 / n:.2f} ms",
        ),
        Figure(
            "last approve CPU, Temporal dev server",
            last_cpu[1] * 1000 / n,
            "ms CPU/approve",
            baseline=bare_update_cpu[1] * 1000 / n,
            baseline_name="bare update round trip",
        ),
        Figure(
            "rejected (invalid) Update p99",
            _pct(refused, 0.99),
            "s",
            baseline=_pct(bare_refused, 0.99),
            baseline_name="bare refused update p99",
            goal=Goal(1.0, AT_MOST, on="value"),
            failed=refuse_failed + bare_refuse_failed,
            note=f"p50 {_pct(refused, 0.5):.3f} s; wrong approver, PERMISSION_DENIED by the validator",
        ),
    ]


def suite(quick: bool) -> list[Figure]:
    n = int(os.environ.get("SALESOPS_BENCH_APPROVALS", "100" if quick else "1000"))
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_measure(f"sqlite+aiosqlite:///{Path(tmp) / 'pipeline.db'}", n))


if __name__ == "__main__":
    for f in suite("--quick" in sys.argv):
        print(f"{f.name}: {f.value:.4g} {f.unit} (baseline {f.baseline}) ratio {f.ratio} failed {f.failed}")
