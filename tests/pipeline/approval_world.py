"""A real pipeline gRPC server with the approval workflow on Temporal's time-skipping server (for test_approval*)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from temporalio.testing import WorkflowEnvironment

from deploy.local.infra import free_port
from kit.auth import TokenVerifier
from kit.config import GrpcSettings
from kit.db import Database
from kit.grpc.server import GrpcServer
from kit.migrations import upgrade_to_head
from kit.temporal import WorkerRunner, build_worker
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import approval_pb2 as ap
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import pipeline_service_pb2_grpc, settings_pb2, types_pb2
from services.pipeline import api
from services.pipeline.approval_activities import ApprovalActivities
from services.pipeline.approval_workflows import ApprovalWorkflow, LostDealApprovalsWorkflow
from tests.pipeline.conftest import CONFIG, MINTER, token
from tests.pipeline.helpers import new_deal

# Approvers outside the demo chart: (roles, manager).
APPROVERS: dict[str, tuple[list[str], str]] = {
    "legal-1": (["legal"], "gm-1"),
    "legal-2": (["legal"], "gm-1"),
    "fin-1": (["finance_risk"], "cfo-1"),
    "fin-2": (["finance_risk"], "cfo-1"),
    "fin-3": (["finance_risk"], "cfo-1"),
    "gm-1": (["gm"], ""),
    "cfo-1": ([], "gm-1"),
    "tech-1": (["tech_lead"], "cfo-1"),
}
HOURS = types_pb2.TIME_UNIT_HOURS


def hours(n: int) -> types_pb2.TimeLimit:
    return types_pb2.TimeLimit(value=n, unit=HOURS)


def approver_token(user: str, tenant: str = "demo") -> str:
    return MINTER.mint(user, tenant, ["rep"], org="")


@dataclass
class World:
    db: Database
    env: WorkflowEnvironment
    queue: str
    stub: pipeline_service_pb2_grpc.PipelineServiceStub

    async def call(
        self, method: str, request: Any, user: str = "admin", tenant: str = "demo", client: str = ""
    ) -> Any:
        bearer = approver_token(user, tenant) if user in APPROVERS else token(user, tenant)
        md = [("authorization", f"Bearer {bearer}")]
        if client:
            md.append(("x-salesops-client", client))
        return await getattr(self.stub, method)(request, metadata=tuple(md), timeout=60)

    async def now(self) -> datetime:
        return (await self.env.get_current_time()).astimezone(UTC)

    async def skip_to(self, when: datetime) -> None:
        current = await self.now()
        if when > current:
            await self.env.sleep(when - current)

    async def until(self, check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await check():
            assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
            await asyncio.sleep(0.1)

    async def get(self, approval_id: str, user: str = "admin") -> ap.Approval:
        found: ap.Approval = (
            await self.call("GetApproval", pb.GetApprovalRequest(approval_id=approval_id), user)
        ).approval
        return found

    async def flow(self, flow: ap.ApprovalFlow) -> ap.ApprovalFlow:
        req = pb.CreateApprovalFlowRequest(approval_flow=flow)
        made: ap.ApprovalFlow = (await self.call("CreateApprovalFlow", req)).approval_flow
        return made

    async def deal(self, deal_id: str, amount_minor: int = 60_000_000, owner: str = "rep-a1") -> None:
        deal = new_deal(deal_id, amount=amount_minor)
        await self.call("CreateDeal", pb.CreateDealRequest(deal=deal), owner)

    async def request(
        self, approval_id: str, deal_id: str, flow_id: str = "", user: str = "rep-a1", **kw: Any
    ) -> ap.Approval:
        a = ap.Approval(
            approval_id=approval_id,
            flow_id=flow_id,
            kind=ap.APPROVAL_KIND_CONTRACT,
            deal_id=deal_id,
            title=f"Contract {deal_id}",
            **kw,
        )
        made: ap.Approval = (
            await self.call("CreateApproval", pb.CreateApprovalRequest(approval=a), user)
        ).approval
        return made


async def seed_profiles(w: World) -> None:
    people = {**{u: v for u, v in APPROVERS.items()}, "rep-a1": ([], "sup-a"), "sup-a": ([], "director-east")}
    for user, (roles, manager) in people.items():
        p = settings_pb2.MemberProfile(
            user_id=user,
            display_name=user,
            org_path="east/team-a" if user in ("rep-a1", "sup-a") else "",
            manager_user_id=manager,
            approver_roles=roles,
            active=True,
        )
        await w.call(
            "UpdateMemberProfile", pb.UpdateMemberProfileRequest(member_profile=p, allow_missing=True)
        )


@pytest.fixture
async def world(database_url: str, temporal_skipping: WorkflowEnvironment) -> AsyncIterator[World]:
    db = Database(database_url, pool_size=30)
    await upgrade_to_head("pipeline", db)
    queue = f"pipeline-approvals-{uuid.uuid4().hex[:8]}"
    acts = ApprovalActivities(db)
    runner = WorkerRunner(
        build_worker(
            temporal_skipping.client,
            queue,
            workflows=[ApprovalWorkflow, LostDealApprovalsWorkflow],
            activities=acts.all(),
        )
    )
    runner.start()
    settings = GrpcSettings(
        listen=f"127.0.0.1:{free_port()}",
        reflection=False,
        grace_seconds=1.0,
        default_deadline_seconds=60.0,
        max_message_bytes=16 * 1024 * 1024,
        keepalive_time_ms=30_000,
        keepalive_timeout_ms=10_000,
    )
    rt = SimpleNamespace(db=db, temporal=temporal_skipping.client, settings=SimpleNamespace(task_queue=queue))
    server = GrpcServer("pipeline", settings, TokenVerifier(CONFIG), api.registrations(rt))  # type: ignore[arg-type]
    await server.start()
    channel = grpc.aio.insecure_channel(server.address)
    w = World(db, temporal_skipping, queue, pipeline_service_pb2_grpc.PipelineServiceStub(channel))
    try:
        await seed_profiles(w)
        yield w
    finally:
        await channel.close(None)
        await server.stop(0)
        await runner.stop()
        await db.dispose()


def contract_flow(
    flow_id: str = "contract_over_500k", idle: ap.IdlePolicy | None = None, **step_kw: Any
) -> ap.ApprovalFlow:
    """Legal, finance risk and the GM in parallel, each must approve; over 500,000.00."""
    steps = [
        ap.ApprovalStepDefinition(
            step_key=key,
            display_name=key,
            mode=ap.STEP_MODE_APPROVAL,
            approvers=ap.ApproverSelector(type=ap.APPROVER_SELECTOR_TYPE_APPROVER_ROLE, role_key=role),
            **{"quorum": ap.STEP_QUORUM_ALL, **step_kw.get(key, {})},
        )
        for key, role in (("legal", "legal"), ("finance_risk", "finance_risk"), ("gm", "gm"))
    ]
    return ap.ApprovalFlow(
        flow_id=flow_id,
        display_name="Contract over 500,000",
        kind=ap.APPROVAL_KIND_CONTRACT,
        trigger=ap.ApprovalCondition(min_amount=Money(amount_minor=50_000_000, currency="CNY")),
        steps=steps,
        idle_policy=idle or ap.IdlePolicy(remind_after=hours(24), escalate_after=hours(48)),
    )


def states(a: ap.Approval) -> dict[str, str]:
    return {
        s.step_key: ap.ApprovalStepState.Name(s.state).removeprefix("APPROVAL_STEP_STATE_") for s in a.steps
    }


def actions(a: ap.Approval) -> list[tuple[str, str, str]]:
    return [
        (
            ap.ApprovalActionType.Name(x.type).removeprefix("APPROVAL_ACTION_TYPE_"),
            x.step_key,
            x.actor_user_id,
        )
        for x in a.history
    ]


def _projector(run: Any) -> Callable[[Any], Awaitable[None]]:
    from services.pipeline import approvals

    async def work(uow: Any) -> None:
        await approvals.project(uow, run, [])

    return work


async def seed_approval_lists(db: Database, call: Callable[..., Awaitable[Any]]) -> None:
    """Rows for the paging property: flows, delegations, and approvals projected as their workflow would
    (ties in submit time on purpose; some wait on the admin), in demo and in another tenant."""
    from services.pipeline.domain import approvals as d
    from services.pipeline.store import transactions

    for n in range(6):
        flow = contract_flow(f"flow_{n}")
        flow.kind = ap.APPROVAL_KIND_CONTRACT if n % 2 else ap.APPROVAL_KIND_DISCOUNT
        for tenant in ("demo", "acme"):
            await call("CreateApprovalFlow", pb.CreateApprovalFlowRequest(approval_flow=flow), tenant=tenant)
    base = datetime(2026, 1, 5, tzinfo=UTC)
    for n in range(5):
        leave = ap.ApprovalDelegation(user_id=f"m{n % 2}", delegate_user_id="m5")
        leave.start_time.FromDatetime(base + timedelta(days=n % 3))
        leave.end_time.FromDatetime(base + timedelta(days=10))
        await call("CreateApprovalDelegation", pb.CreateApprovalDelegationRequest(approval_delegation=leave))
    steps = [d.StepDef("legal", "Legal", quorum="ANY")]
    for n in range(7):
        for tenant in ("demo", "acme") if n == 0 else ("demo",):
            run = d.Run(
                approval_id=f"A{n}",
                tenant=tenant,
                flow_id="flow_0",
                flow_version=1,
                kind="CONTRACT" if n % 3 else "DISCOUNT",
                title=f"Approval {n}",
                deal_id="",
                deal_owner="",
                org_path="",
                requester="rep-a1",
                submit_time=(base + timedelta(hours=n % 3)).isoformat(timespec="microseconds"),
                steps_def=steps,
                facts=d.Facts(),
            )
            d.start(run, run.submit_time, "rep-a1")
            d.activate(run, "legal", d.Opening(["admin"] if n != 6 else ["m1"]), run.submit_time)
            await transactions(db).run(tenant, _projector(run))
