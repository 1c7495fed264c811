"""Finance facts and reconciliation over real gRPC: validation per fact, upserts, matching, the rules
that need no timer, issues raised with their events, resolution by the owner, access by role and tenant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from salesops.common.v1.types_pb2 import AttachmentRef, Money
from salesops.pipeline.v1 import deal_pb2, reconciliation_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline.domain import reconciliation as rules
from services.pipeline.store import outbox
from tests.pipeline.conftest import MINTER, Pipeline
from tests.pipeline.helpers import create, in_days, new_deal, refused

R = reconciliation_pb2
CNY = "CNY"


def stamp(at: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(at)
    return t


def fact(external_id: str, kind: int, amount: int, **kw: object) -> R.FinanceFact:
    kw.setdefault("occur_time", stamp(datetime.now(UTC) - timedelta(hours=1)))
    return R.FinanceFact(
        kind=kind,  # type: ignore[arg-type]
        source_system="kingdee-prod",
        external_id=external_id,
        amount=Money(amount_minor=amount, currency=CNY),
        **kw,  # type: ignore[arg-type]
    )


async def ingest(p: Pipeline, *facts: R.FinanceFact, user: str = "admin") -> list[pb.FinanceFactResult]:
    resp = await p.call("IngestFinanceFacts", pb.IngestFinanceFactsRequest(facts=list(facts)), user=user)
    return list(resp.results)


async def won_deal(p: Pipeline, deal_id: str, amount: int, owner: str = "rep-a1") -> deal_pb2.Deal:
    await create(p, new_deal(deal_id, amount=amount), user=owner)
    ev = deal_pb2.DealEvidence(
        evidence_id=f"sc-{deal_id}",
        evidence_type_id="signed_contract",
        attachment=AttachmentRef(uri="s3://c"),
    )
    await p.call("CreateDealEvidence", pb.CreateDealEvidenceRequest(deal_id=deal_id, evidence=ev), user=owner)
    won: deal_pb2.Deal = (await p.call("MarkWon", pb.MarkWonRequest(deal_id=deal_id), user=owner)).deal
    return won


async def issues(p: Pipeline, user: str = "admin", **filter_kw: object) -> list[R.ReconciliationIssue]:
    req = pb.ListReconciliationIssuesRequest(filter=pb.ReconciliationIssueFilter(**filter_kw))  # type: ignore[arg-type]
    return list((await p.call("ListReconciliationIssues", req, user=user)).issues)


# ------------------------------------------------------------------ rules (pure)

AT = datetime(2026, 6, 20, 12, tzinfo=UTC)
POLICY = rules.Policy(grace=timedelta(days=7), tolerance_bps=50, default_term_days=30, zone="Asia/Shanghai")


def F(kind: str, amount: int, due: date | None = None, fid: str = "f") -> rules.Fact:
    return rules.Fact(fid, kind, amount, datetime(2026, 5, 1, tzinfo=UTC), due)


def kinds(deal: rules.DealState, facts: list[rules.Fact], at: datetime = AT) -> list[str]:
    return [f.kind for f in rules.findings(deal, facts, POLICY, at)]


def test_rules_each_kind() -> None:
    won = rules.DealState("WON", 1_000_000, datetime(2026, 6, 1, tzinfo=UTC))
    due = date(2026, 6, 10)
    # Signed, due 10 June, grace 7 days: past terms from 18 June 00:00 Shanghai time.
    assert kinds(won, [F(rules.CONTRACT, 1_000_000, due)]) == [rules.SIGNED_NOT_PAID]
    assert kinds(won, [F(rules.CONTRACT, 1_000_000, due)], datetime(2026, 6, 17, 15, 59, tzinfo=UTC)) == []
    assert kinds(won, [F(rules.CONTRACT, 1_000_000, due)], datetime(2026, 6, 17, 16, 0, tzinfo=UTC)) == [
        rules.SIGNED_NOT_PAID
    ]
    # Paid within tolerance (0.5 %): nothing; paid 900k: still unpaid past terms.
    assert kinds(won, [F(rules.CONTRACT, 1_000_000, due), F(rules.PAYMENT, 996_000)]) == []
    assert kinds(won, [F(rules.CONTRACT, 1_000_000, due), F(rules.PAYMENT, 900_000)]) == [
        rules.SIGNED_NOT_PAID
    ]
    # Paid more than won: a mismatch at once; the contract itself differing from the won amount too.
    assert kinds(won, [F(rules.CONTRACT, 1_200_000, due), F(rules.PAYMENT, 1_200_000)]) == [
        rules.PAID_AMOUNT_MISMATCH,
        rules.CONTRACT_AMOUNT_MISMATCH,
    ]
    # Won without a contract: after the grace only.
    assert kinds(won, [], datetime(2026, 6, 7, 23, tzinfo=UTC)) == []
    assert kinds(won, [], datetime(2026, 6, 8, tzinfo=UTC)) == [rules.WON_WITHOUT_CONTRACT]
    # Shipment (or payment, contract) without a won deal.
    open_deal = rules.DealState("OPEN", 1_000_000)
    assert kinds(open_deal, [F(rules.SHIPMENT, 0)]) == [rules.FACT_ON_OPEN_DEAL]
    assert kinds(rules.DealState("LOST", 5), [F(rules.PAYMENT, 5)]) == [rules.FACT_ON_OPEN_DEAL]
    assert kinds(open_deal, [F(rules.INVOICE, 5)]) == []
    # A contract without a due date: signing + the default term (1 May + 30 days = 31 May).
    assert rules.totals([F(rules.CONTRACT, 1)], POLICY).due == date(2026, 5, 31)


def test_next_check_is_the_next_time_based_change() -> None:
    won = rules.DealState("WON", 1_000_000, datetime(2026, 6, 1, tzinfo=UTC))
    assert rules.next_check(won, [], POLICY, AT - timedelta(days=30)) == datetime(2026, 6, 8, tzinfo=UTC)
    assert rules.next_check(won, [], POLICY, AT) is None
    facts = [F(rules.CONTRACT, 1_000_000, date(2026, 7, 1))]
    assert rules.next_check(won, facts, POLICY, AT) == datetime(2026, 7, 8, 16, tzinfo=UTC)
    assert rules.next_check(rules.DealState("OPEN", 1), [], POLICY, AT) is None


# ------------------------------------------------------------------ API


async def test_ingest_validates_each_fact_upserts_and_matches(pipeline: Pipeline) -> None:
    await create(pipeline, new_deal("D1", amount=1_000_000))
    contract = fact(
        "HT-1", R.FINANCE_FACT_KIND_CONTRACT_SIGNED, 1_000_000, deal_id="D1", external_number="HT-2026-1"
    )
    bad = R.FinanceFact(
        kind=R.FINANCE_FACT_KIND_PAYMENT_RECEIVED, amount=Money(amount_minor=5, currency="USD")
    )
    results = await ingest(pipeline, contract, bad)
    assert [r.status for r in results] == [pb.FACT_INGEST_STATUS_ACCEPTED, pb.FACT_INGEST_STATUS_INVALID]
    assert results[1].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "amount.currency" in str(results[1].error.details) and "occur_time" in str(
        results[1].error.details
    )
    stored = results[0].fact
    assert (
        stored.fact_id
        and stored.matched_deal_id == "D1"
        and stored.match_status == R.FACT_MATCH_STATUS_MATCHED
    )
    # A contract on an open deal: FACT_ON_OPEN_DEAL raised in the same call, with its event.
    raised = await issues(pipeline)
    assert [(i.kind, i.deal_id, i.owner_user_id) for i in raised] == [
        (R.RECONCILIATION_ISSUE_KIND_FACT_ON_OPEN_DEAL, "D1", "rep-a1")
    ]
    assert list(results[0].raised_issue_ids) == [raised[0].issue_id]
    # The same record again: DUPLICATE; a newer version: UPDATED; an older one: DUPLICATE.
    again = await ingest(pipeline, contract)
    assert again[0].status == pb.FACT_INGEST_STATUS_DUPLICATE and again[0].fact.fact_id == stored.fact_id
    newer = R.FinanceFact()
    newer.CopyFrom(contract)
    newer.source_update_time.CopyFrom(stamp(datetime.now(UTC)))
    newer.amount.amount_minor = 1_100_000
    assert (await ingest(pipeline, newer))[0].status == pb.FACT_INGEST_STATUS_UPDATED
    assert (await ingest(pipeline, contract))[0].status == pb.FACT_INGEST_STATUS_DUPLICATE
    # A payment naming only the contract is matched through it.
    pay = fact("PAY-1", R.FINANCE_FACT_KIND_PAYMENT_RECEIVED, 300_000, contract_external_id="HT-1")
    assert (await ingest(pipeline, pay))[0].fact.matched_deal_id == "D1"
    # One issue per kind and deal, updated rather than repeated.
    assert len(await issues(pipeline)) == 1
    listed = await pipeline.call("ListFinanceFacts", pb.ListFinanceFactsRequest(deal_id="D1"), user="rep-a1")
    assert sorted(f.external_id for f in listed.facts) == ["HT-1", "PAY-1"]
    assert (await pipeline.call("ListFinanceFacts", pb.ListFinanceFactsRequest(), user="rep-b1")).facts == []


async def test_unmatched_facts_are_admin_issues_and_clear_when_matched(pipeline: Pipeline) -> None:
    ship = fact("SHIP-1", R.FINANCE_FACT_KIND_SHIPMENT_DISPATCHED, 0, deal_id="nowhere")
    first = await ingest(pipeline, ship)
    assert first[0].fact.match_status == R.FACT_MATCH_STATUS_UNMATCHED
    unmatched = await issues(pipeline)
    assert [i.kind for i in unmatched] == [R.RECONCILIATION_ISSUE_KIND_UNMATCHED_FACT]
    assert await issues(pipeline, user="rep-a1") == [] and await issues(pipeline, user="sup-a") == []
    await refused(
        pipeline.call(
            "GetReconciliationIssue",
            pb.GetReconciliationIssueRequest(issue_id=unmatched[0].issue_id),
            user="sup-a",
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    # The deal appears, the record is sent again (newer): matched; the unmatched issue is cleared by data,
    # and a shipment without a won deal is raised for the owner.
    await create(pipeline, new_deal("nowhere", amount=10))
    ship.source_update_time.CopyFrom(stamp(datetime.now(UTC)))
    await ingest(pipeline, ship)
    open_now = await issues(pipeline)
    assert [(i.kind, i.deal_id) for i in open_now] == [
        (R.RECONCILIATION_ISSUE_KIND_FACT_ON_OPEN_DEAL, "nowhere")
    ]
    closed = await issues(pipeline, states=[R.RECONCILIATION_ISSUE_STATE_RESOLVED])
    assert [(c.kind, c.resolution, c.resolved_by) for c in closed] == [
        (
            R.RECONCILIATION_ISSUE_KIND_UNMATCHED_FACT,
            R.RECONCILIATION_RESOLUTION_CLEARED_BY_DATA,
            "system:pipeline",
        )
    ]


async def test_won_deal_amount_rules_and_resolution_by_the_owner(pipeline: Pipeline) -> None:
    await won_deal(pipeline, "W1", 1_000_000)
    results = await ingest(
        pipeline,
        fact(
            "HT-W1",
            R.FINANCE_FACT_KIND_CONTRACT_SIGNED,
            1_200_000,
            deal_id="W1",
            payment_due_date=in_days(30),
        ),
        fact("PAY-W1", R.FINANCE_FACT_KIND_PAYMENT_RECEIVED, 1_200_000, deal_id="W1"),
    )
    found = {i.kind: i for i in await issues(pipeline, user="rep-a1")}
    assert set(found) == {
        R.RECONCILIATION_ISSUE_KIND_PAID_AMOUNT_MISMATCH,
        R.RECONCILIATION_ISSUE_KIND_CONTRACT_AMOUNT_MISMATCH,
    }
    paid = found[R.RECONCILIATION_ISSUE_KIND_PAID_AMOUNT_MISMATCH]
    assert (
        paid.expected_amount.amount_minor,
        paid.actual_amount.amount_minor,
        paid.difference_amount.amount_minor,
    ) == (
        1_000_000,
        1_200_000,
        200_000,
    )
    assert set(results[1].raised_issue_ids) >= {paid.issue_id}
    # Who sees it: the owner, their supervisor and director, admins; not another rep or team, not another tenant.
    get = pb.GetReconciliationIssueRequest(issue_id=paid.issue_id)
    for user in ("rep-a1", "sup-a", "director-east", "admin"):
        assert (await pipeline.call("GetReconciliationIssue", get, user=user)).issue.issue_id == paid.issue_id
    for user in ("rep-a2", "sup-b"):
        await refused(pipeline.call("GetReconciliationIssue", get, user=user), grpc.StatusCode.NOT_FOUND)
    await refused(
        pipeline.call("GetReconciliationIssue", get, user="admin", tenant="acme"), grpc.StatusCode.NOT_FOUND
    )

    # Resolving needs a resolution other than CLEARED_BY_DATA and a note; a stranger cannot.
    def resolve(**kw: object) -> pb.ResolveReconciliationIssueRequest:
        return pb.ResolveReconciliationIssueRequest(issue_id=paid.issue_id, **kw)  # type: ignore[arg-type]

    await refused(
        pipeline.call("ResolveReconciliationIssue", resolve(note="x"), user="rep-a1"),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await refused(
        pipeline.call(
            "ResolveReconciliationIssue",
            resolve(resolution=R.RECONCILIATION_RESOLUTION_CLEARED_BY_DATA, note="x"),
            user="rep-a1",
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    ok = resolve(
        resolution=R.RECONCILIATION_RESOLUTION_EXPLAINED, note="price rose with an add-on, order amended"
    )
    await refused(pipeline.call("ResolveReconciliationIssue", ok, user="rep-b1"), grpc.StatusCode.NOT_FOUND)
    done = (await pipeline.call("ResolveReconciliationIssue", ok, user="rep-a1")).issue
    assert (done.state, done.resolution, done.resolved_by) == (
        R.RECONCILIATION_ISSUE_STATE_RESOLVED,
        R.RECONCILIATION_RESOLUTION_EXPLAINED,
        "rep-a1",
    )
    assert done.resolution_note.startswith("price rose") and done.resolve_time.seconds > 0
    await refused(
        pipeline.call("ResolveReconciliationIssue", ok, user="rep-a1"), grpc.StatusCode.FAILED_PRECONDITION
    )
    # An explained difference is not raised again by the next fact; a new difference is.
    await ingest(pipeline, fact("INV-W1", R.FINANCE_FACT_KIND_INVOICE_ISSUED, 1_200_000, deal_id="W1"))
    assert {i.kind for i in await issues(pipeline)} == {R.RECONCILIATION_ISSUE_KIND_CONTRACT_AMOUNT_MISMATCH}
    await ingest(pipeline, fact("PAY-W1b", R.FINANCE_FACT_KIND_PAYMENT_RECEIVED, 10_000, deal_id="W1"))
    assert R.RECONCILIATION_ISSUE_KIND_PAID_AMOUNT_MISMATCH in {i.kind for i in await issues(pipeline)}
    # Events for notify: raised (with the owner's supervisor) and resolved.
    async with pipeline.db.engine.connect() as conn:
        types = list(await conn.scalars(select(outbox.c.type).where(outbox.c.tenant_id == "demo")))
    assert types.count("pipeline.ReconciliationIssueRaised") == 3
    assert types.count("pipeline.ReconciliationIssueResolved") == 1


async def test_ingest_is_for_admins_and_partners_and_bounded(pipeline: Pipeline) -> None:
    one = fact("X", R.FINANCE_FACT_KIND_INVOICE_ISSUED, 1)
    await refused(ingest(pipeline, one, user="rep-a1"), grpc.StatusCode.PERMISSION_DENIED)
    await refused(ingest(pipeline, one, user="sup-a"), grpc.StatusCode.PERMISSION_DENIED)
    partner = MINTER.mint("erp-bridge", "demo", ["service"], scopes=["pipeline.write"])
    resp = await pipeline.call_with(partner, "IngestFinanceFacts", pb.IngestFinanceFactsRequest(facts=[one]))
    assert resp.results[0].status == pb.FACT_INGEST_STATUS_ACCEPTED
    await refused(ingest(pipeline), grpc.StatusCode.INVALID_ARGUMENT)
    await refused(ingest(pipeline, *[one] * 501), grpc.StatusCode.INVALID_ARGUMENT)
    far = fact(
        "Y", R.FINANCE_FACT_KIND_INVOICE_ISSUED, 10**16, occur_time=Timestamp(seconds=253402300800 + 10)
    )
    res = (await ingest(pipeline, far))[0]
    assert res.status == pb.FACT_INGEST_STATUS_INVALID
    assert "amount.amount_minor" in str(res.error.details) and "occur_time" in str(res.error.details)


async def seed_paging(p: Pipeline) -> None:
    """Customers, facts and issues for the paging property (tests/pipeline/test_paging_property.py):
    unmatched facts whose amounts (and so issue differences) and times tie, in two tenants."""
    from salesops.pipeline.v1 import customer_pb2

    same_time = stamp(datetime.now(UTC) - timedelta(hours=2))
    for tenant, amounts in (("demo", [300, 100, 200, 100, 200, 200, 50]), ("acme", [5, 5])):
        facts = [
            fact(
                f"U{i}",
                R.FINANCE_FACT_KIND_INVOICE_ISSUED,
                a,
                occur_time=same_time if i % 2 else stamp(datetime.now(UTC) - timedelta(hours=i)),
            )
            for i, a in enumerate(amounts)
        ]
        await p.call("IngestFinanceFacts", pb.IngestFinanceFactsRequest(facts=facts), tenant=tenant)
        for i in range(6 if tenant == "demo" else 2):
            c = customer_pb2.Customer(display_name=f"Paging Firm {i}")
            await p.call("CreateCustomer", pb.CreateCustomerRequest(customer=c), tenant=tenant)


async def test_two_concurrent_resolutions_close_an_issue_once(pipeline: Pipeline) -> None:
    import asyncio

    await create(pipeline, new_deal("CC", amount=10))
    await ingest(pipeline, fact("SHIP-CC", R.FINANCE_FACT_KIND_SHIPMENT_DISPATCHED, 0, deal_id="CC"))
    [issue] = await issues(pipeline)

    async def close(user: str, note: str) -> str:
        req = pb.ResolveReconciliationIssueRequest(
            issue_id=issue.issue_id, resolution=R.RECONCILIATION_RESOLUTION_EXPLAINED, note=note
        )
        try:
            await pipeline.call("ResolveReconciliationIssue", req, user=user)
            return "OK"
        except grpc.aio.AioRpcError as exc:
            return exc.code().name

    outcomes = sorted(await asyncio.gather(close("rep-a1", "sample"), close("sup-a", "trial unit")))
    assert outcomes[1] == "OK" and outcomes[0] in ("ABORTED", "FAILED_PRECONDITION"), outcomes
    async with pipeline.db.engine.connect() as conn:
        resolved = list(
            await conn.scalars(
                select(outbox.c.subject).where(outbox.c.type == "pipeline.ReconciliationIssueResolved")
            )
        )
    assert resolved == [issue.issue_id]
