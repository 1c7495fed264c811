"""The reconciliation timer on the time-skipping Temporal server: "past terms" and "won without a
contract" are raised when their time comes (and not when the payment arrived first), and recorded
histories replay without nondeterminism."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from kit.temporal import WorkerRunner, build_worker
from salesops.pipeline.v1 import reconciliation_pb2 as R
from services.pipeline import reconciliation_activities
from services.pipeline.app import SPEC
from services.pipeline.reconciliation_activities import poke
from services.pipeline.reconciliation_workflows import Checked, ReconciliationWorkflow
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import in_days
from tests.pipeline.test_reconciliation import fact, ingest, issues, won_deal


@pytest.fixture
async def worker(pipeline: Pipeline, temporal_skipping: WorkflowEnvironment) -> AsyncIterator[str]:
    queue = f"pipeline-recon-{uuid.uuid4().hex[:8]}"
    rt = SimpleNamespace(db=pipeline.db)
    runner = WorkerRunner(
        build_worker(
            temporal_skipping.client,
            queue,
            workflows=[ReconciliationWorkflow],
            activities=list(reconciliation_activities.build(rt)),  # type: ignore[arg-type]
        )
    )
    assert ReconciliationWorkflow in SPEC.workflows  # what the runtime's worker runs too
    runner.start()
    try:
        yield queue
    finally:
        await runner.stop()


async def run(
    env: WorkflowEnvironment, queue: str, deal_id: str
) -> tuple[Checked, WorkflowHandle[object, object]]:
    handle = await poke(env.client, queue, "demo", deal_id)
    result = await handle.result(rpc_timeout=timedelta(seconds=120))  # time skips while it sleeps
    return Checked(**result) if isinstance(result, dict) else result, handle


async def test_signed_but_unpaid_is_raised_when_terms_and_grace_have_passed(
    pipeline: Pipeline, temporal_skipping: WorkflowEnvironment, worker: str
) -> None:
    await won_deal(pipeline, "T1", 1_000_000)
    await ingest(
        pipeline,
        fact(
            "HT-T1", R.FINANCE_FACT_KIND_CONTRACT_SIGNED, 1_000_000, deal_id="T1", payment_due_date=in_days(3)
        ),
    )
    assert await issues(pipeline) == []  # nothing is due yet
    checked, handle = await run(temporal_skipping, worker, "T1")
    assert checked.open_issues == 1 and checked.next_at == ""
    [issue] = await issues(pipeline, user="rep-a1")
    assert issue.kind == R.RECONCILIATION_ISSUE_KIND_SIGNED_NOT_PAID
    assert (issue.expected_amount.amount_minor, issue.actual_amount.amount_minor) == (1_000_000, 0)
    # Detected on the workflow's clock: after the due date (3 days) plus the 7-day grace.
    detected = issue.detect_time.ToDatetime(tzinfo=UTC)
    assert detected >= datetime.now(UTC) + timedelta(days=9)
    history = await handle.fetch_history()
    await Replayer(workflows=[ReconciliationWorkflow]).replay_workflow(history)


async def test_paid_in_time_raises_nothing(
    pipeline: Pipeline, temporal_skipping: WorkflowEnvironment, worker: str
) -> None:
    await won_deal(pipeline, "T2", 500_000)
    await ingest(
        pipeline,
        fact(
            "HT-T2", R.FINANCE_FACT_KIND_CONTRACT_SIGNED, 500_000, deal_id="T2", payment_due_date=in_days(2)
        ),
        fact("PAY-T2", R.FINANCE_FACT_KIND_PAYMENT_RECEIVED, 500_000, deal_id="T2"),
    )
    checked, _ = await run(temporal_skipping, worker, "T2")
    assert checked.open_issues == 0
    assert await issues(pipeline) == []


async def test_won_without_a_contract_after_the_grace(
    pipeline: Pipeline, temporal_skipping: WorkflowEnvironment, worker: str
) -> None:
    await won_deal(pipeline, "T3", 800_000, owner="rep-b1")
    checked, handle = await run(temporal_skipping, worker, "T3")
    assert checked.open_issues == 1
    [issue] = await issues(pipeline, user="sup-b")
    assert (issue.kind, issue.deal_id, issue.owner_user_id) == (
        R.RECONCILIATION_ISSUE_KIND_WON_WITHOUT_CONTRACT,
        "T3",
        "rep-b1",
    )
    assert await issues(pipeline, user="sup-a") == []
    # The contract arrives: the issue is cleared by the data.
    await ingest(
        pipeline,
        fact(
            "HT-T3", R.FINANCE_FACT_KIND_CONTRACT_SIGNED, 800_000, deal_id="T3", payment_due_date=in_days(30)
        ),
    )
    assert await issues(pipeline) == []
    resolved = await issues(pipeline, states=[R.RECONCILIATION_ISSUE_STATE_RESOLVED])
    assert [(i.resolution, i.resolved_by) for i in resolved] == [
        (R.RECONCILIATION_RESOLUTION_CLEARED_BY_DATA, "system:pipeline")
    ]
    await Replayer(workflows=[ReconciliationWorkflow]).replay_workflow(await handle.fetch_history())


async def test_a_contract_before_the_win_is_cleared_when_the_deal_is_won(
    pipeline: Pipeline, temporal_skipping: WorkflowEnvironment, worker: str
) -> None:
    from tests.pipeline.helpers import create, new_deal

    await create(pipeline, new_deal("T4", amount=300_000))
    await ingest(
        pipeline,
        fact(
            "HT-T4", R.FINANCE_FACT_KIND_CONTRACT_SIGNED, 300_000, deal_id="T4", payment_due_date=in_days(60)
        ),
        fact("PAY-T4", R.FINANCE_FACT_KIND_PAYMENT_RECEIVED, 300_000, deal_id="T4"),
    )
    assert [i.kind for i in await issues(pipeline)] == [R.RECONCILIATION_ISSUE_KIND_FACT_ON_OPEN_DEAL]
    await won_deal_existing(pipeline, "T4")
    # DealWon wakes the deal's timer (the consumer's poke): the won deal with its contract is consistent.
    checked, _ = await run(temporal_skipping, worker, "T4")
    assert checked.open_issues == 0 and await issues(pipeline) == []


async def won_deal_existing(p: Pipeline, deal_id: str) -> None:
    from salesops.common.v1.types_pb2 import AttachmentRef
    from salesops.pipeline.v1 import deal_pb2
    from salesops.pipeline.v1 import pipeline_service_pb2 as pb

    ev = deal_pb2.DealEvidence(
        evidence_id=f"sc-{deal_id}",
        evidence_type_id="signed_contract",
        attachment=AttachmentRef(uri="s3://c"),
    )
    await p.call(
        "CreateDealEvidence", pb.CreateDealEvidenceRequest(deal_id=deal_id, evidence=ev), user="rep-a1"
    )
    await p.call("MarkWon", pb.MarkWonRequest(deal_id=deal_id), user="rep-a1")


async def test_the_consumer_wakes_the_deals_timer_and_skips_unmatched_facts(
    pipeline: Pipeline, temporal_skipping: WorkflowEnvironment, worker: str
) -> None:
    from temporalio.service import RPCError

    from kit.events import new_envelope
    from salesops.pipeline.v1 import events_pb2
    from services.pipeline import events, reconciliation
    from services.pipeline.reconciliation_activities import RECONCILIATION_CONSUMER, waking_handler
    from services.pipeline.reconciliation_workflows import workflow_id

    assert set(RECONCILIATION_CONSUMER.types or ()) >= {events.DEAL_WON, reconciliation.FACT_RECORDED}
    rt = SimpleNamespace(temporal=temporal_skipping.client, settings=SimpleNamespace(task_queue=worker))
    handle = waking_handler(rt)  # type: ignore[arg-type]
    unmatched = events_pb2.FinanceFactRecorded(fact_id="F-X")
    envelope = new_envelope(reconciliation.FACT_RECORDED, "demo", unmatched, source="pipeline", subject="F-X")
    await handle(envelope, None)  # type: ignore[arg-type]
    with pytest.raises(RPCError):
        await temporal_skipping.client.get_workflow_handle(workflow_id("demo", "F-X")).describe()
    await won_deal(pipeline, "T5", 100_000)
    won = events_pb2.DealWon()
    await handle(new_envelope(events.DEAL_WON, "demo", won, source="pipeline", subject="T5"), None)  # type: ignore[arg-type]
    described = await temporal_skipping.client.get_workflow_handle(workflow_id("demo", "T5")).describe()
    assert described.workflow_type == "PipelineReconciliation"
    checked, _ = await run(temporal_skipping, worker, "T5")  # the same workflow, woken again: time skips
    assert checked.open_issues == 1
    assert [i.kind for i in await issues(pipeline)] == [R.RECONCILIATION_ISSUE_KIND_WON_WITHOUT_CONTRACT]


async def test_a_reassigned_deal_takes_its_open_issues_to_the_new_owner(
    pipeline: Pipeline, temporal_skipping: WorkflowEnvironment, worker: str
) -> None:
    from salesops.pipeline.v1 import customer_pb2, deal_pb2
    from salesops.pipeline.v1 import pipeline_service_pb2 as pb
    from tests.pipeline.helpers import create, mask, new_deal

    c = await pipeline.call(
        "CreateCustomer",
        pb.CreateCustomerRequest(customer=customer_pb2.Customer(display_name="Move Co")),
        user="rep-a1",
    )
    deal = new_deal("T6", amount=1_000)
    deal.customer.customer_id = c.customer.customer_id
    await create(pipeline, deal)
    await ingest(pipeline, fact("SHIP-T6", R.FINANCE_FACT_KIND_SHIPMENT_DISPATCHED, 0, deal_id="T6"))
    assert [i.owner_user_id for i in await issues(pipeline)] == ["rep-a1"]
    moved = deal_pb2.Deal(deal_id="T6", owner_user_id="rep-b1")
    await pipeline.call(
        "UpdateDeal", pb.UpdateDealRequest(deal=moved, update_mask=mask("owner_user_id")), user="admin"
    )
    view_req = pb.GetCustomerViewRequest(customer_id=c.customer.customer_id)
    # Before the timer looks again the issue still names rep-a1: rep-b1's view shows the deal, not it.
    view = (await pipeline.call("GetCustomerView", view_req, user="rep-b1")).view
    assert [d.deal.deal_id for d in view.deals] == ["T6"] and list(view.open_issues) == []
    await run(temporal_skipping, worker, "T6")  # DealOwnerChanged wakes it (consumer), here poked directly
    assert [i.owner_user_id for i in await issues(pipeline)] == ["rep-b1"]
    view = (await pipeline.call("GetCustomerView", view_req, user="rep-b1")).view
    assert [i.deal_id for i in view.open_issues] == ["T6"]
    assert await issues(pipeline, user="rep-a1") == []
