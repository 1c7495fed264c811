"""Re-grading a tenant's open leads after new grading rules: a Temporal workflow (time-skipping server).

Batches run one transaction each; the workflow id is the business key (tenant, rules version), so a
second start is refused and a re-run changes nothing; a workflow started before its rules committed
waits for them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.testing import WorkflowEnvironment

from kit.db import Database
from kit.migrations import upgrade_to_head
from kit.resources import UnitOfWork
from kit.temporal import WorkerRunner, build_worker
from salesops.leads.v1 import policies_pb2
from services.leads import activities, intake, policies, workflows
from services.leads.store import LeadRow, transactions
from tests.leads.helpers import events, hot_lead
from tests.leads.test_sla_workflow import ADMIN


@pytest.fixture
async def world(
    sqlite_url: str, temporal_skipping: WorkflowEnvironment
) -> AsyncIterator[tuple[Database, WorkflowEnvironment, str]]:
    db = Database(sqlite_url)
    await upgrade_to_head("leads", db)
    queue = f"leads-{uuid.uuid4().hex[:8]}"
    acts = activities.RegradeActivities(db)
    runner = WorkerRunner(
        build_worker(
            temporal_skipping.client,
            queue,
            workflows=[workflows.RegradeOpenLeadsWorkflow],
            activities=[acts.regrade_batch],
        )
    )
    runner.start()
    try:
        yield db, temporal_skipping, queue
    finally:
        await runner.stop()
        await db.dispose()


async def everyone_is_hot(db: Database) -> int:
    async def work(uow: UnitOfWork) -> int:
        rules = await policies.load(uow, policies.GRADING)
        rules.rules.add(
            rule_id=f"everyone-{rules.version}", display_name="Everyone", enabled=True, points=100
        )
        saved: policies_pb2.GradingRules = await policies.save(
            uow, policies.GRADING, rules, ["rules"], "admin"
        )
        return int(saved.version)

    return await transactions(db).run("demo", work)


async def start(env: WorkflowEnvironment, queue: str, version: int, run: str = "") -> object:
    return await env.client.start_workflow(
        workflows.REGRADE_WORKFLOW,
        workflows.RegradeInput("demo", version, batch_size=2),
        id=workflows.regrade_workflow_id("demo", version) + run,
        task_queue=queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )


async def test_open_leads_regrade_in_batches_once(world: tuple[Database, WorkflowEnvironment, str]) -> None:
    db, env, queue = world
    at = datetime.now(UTC)
    for i in range(5):
        lead = hot_lead(f"RG{i}", phone=f"1380007{i:04d}", channel=1, budget=0)
        await transactions(db).run("demo", lambda uow, lead=lead: intake.create(uow, ADMIN, lead, at))
    version = await everyone_is_hot(db)
    handle = await start(env, queue, version)
    assert await handle.result() == 5  # type: ignore[attr-defined]
    assert len(await events(db, "leads.LeadGraded")) == 5
    with pytest.raises(WorkflowAlreadyStartedError):  # the business key: one re-grade per rules version
        await start(env, queue, version)
    again = await start(env, queue, version, run="-again")
    assert await again.result() == 0  # type: ignore[attr-defined]  # idempotent: nothing changes twice
    assert len(await events(db, "leads.LeadGraded")) == 5
    async with db.session("demo") as s:
        row = await s.get(LeadRow, ("demo", "RG4"))
        assert (
            row is not None and row.grade == "A" and row.grading["trigger"] == "GRADING_TRIGGER_RULES_CHANGED"
        )


async def test_a_regrade_started_before_its_rules_commit_waits_for_them(
    world: tuple[Database, WorkflowEnvironment, str],
) -> None:
    db, env, queue = world
    at = datetime.now(UTC)
    await transactions(db).run(
        "demo", lambda uow: intake.create(uow, ADMIN, hot_lead("RW1", channel=1, budget=0), at)
    )
    handle = await start(env, queue, 1)  # the API starts it inside the unit of work, before the commit
    await asyncio.sleep(0.5)
    assert await events(db, "leads.LeadGraded") == []
    assert await everyone_is_hot(db) == 1  # the commit lands
    assert await handle.result() == 1  # type: ignore[attr-defined]
    # Rules that never commit: the workflow gives up after its retries, having changed nothing.
    lost = await start(env, queue, 9)
    with pytest.raises(WorkflowFailureError):
        await lost.result()  # type: ignore[attr-defined]
    assert len(await events(db, "leads.LeadGraded")) == 1
