"""Paging is correct on every List RPC of PipelineService (AIP-158), found from the service descriptor.

For each built one, over data with ties in the sort key: walking the pages with every page size from
1 to 7 returns every row exactly once, in the documented order (total_size stable where the contract
has one); a page token used by another tenant, with another query, or forged is INVALID_ARGUMENT.
List RPCs not built yet must answer UNIMPLEMENTED; a List RPC in neither set fails the suite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from kit.auth import Principal
from salesops.common.v1.types_pb2 import AttachmentRef, Money
from salesops.pipeline.v1 import (
    approval_pb2,
    deal_pb2,
    forecast_pb2,
    pipeline_service_pb2,
    settings_pb2,
    target_pb2,
    types_pb2,
)
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import seed_history
from services.pipeline.convert import date_proto
from services.pipeline.domain.accuracy import LockPoint
from services.pipeline.store import transactions
from tests.pipeline.approval_world import seed_approval_lists
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import create, field_gated_model, in_days, mask, new_deal, refused, use_model
from tests.pipeline.test_health import seed_anomalies
from tests.pipeline.test_reconciliation import seed_paging

SERVICE = pipeline_service_pb2.DESCRIPTOR.services_by_name["PipelineService"]
LIST_RPCS = sorted(m.name for m in SERVICE.methods if m.name.startswith("List"))
NOT_BUILT: set[str] = set()
AMOUNTS = [300, 100, 200, 100, 200, 200, 50]  # ties on purpose


@dataclass(frozen=True)
class Query:
    request: Callable[[], Message]
    items: str
    ident: Callable[[Any], str]
    key: Callable[[Any], Any]  # the documented order; ties broken by the id ascending
    other: Callable[[Message], None]  # another query a token must not serve
    has_total: bool = False


async def seed(pipeline: Pipeline) -> None:
    await use_model(pipeline, field_gated_model())
    for i, amount in enumerate(AMOUNTS):
        await create(pipeline, new_deal(f"D{i}", amount=amount, expected_close_date=in_days(10 + i % 3)))
    for _ in range(4):  # refused moves: one gate review each
        await refused(
            pipeline.call(
                "MoveStage", pb.MoveStageRequest(deal_id="D0", to_stage_id="proposal_quote"), user="rep-a1"
            )
        )
    for n in range(5):
        ev = deal_pb2.DealEvidence(
            evidence_id=f"E{n}", evidence_type_id="quote", attachment=AttachmentRef(uri=f"s3://{n}")
        )
        await pipeline.call(
            "CreateDealEvidence", pb.CreateDealEvidenceRequest(deal_id="D0", evidence=ev), user="rep-a1"
        )
    for n in range(3):
        upd = deal_pb2.Deal(deal_id="D0", next_step=f"step {n}")
        await pipeline.call(
            "UpdateDeal", pb.UpdateDealRequest(deal=upd, update_mask=mask("next_step")), user="rep-a1"
        )
    # The same deal id in another tenant: its lists exist there, and demo's tokens must not serve them.
    await pipeline.call("CreateDeal", pb.CreateDealRequest(deal=new_deal("D0")), user="rep-a1", tenant="acme")
    for n in range(6):
        member = settings_pb2.MemberProfile(
            user_id=f"m{n}", display_name=f"M{n}", org_path="east/team-a", active=True
        )
        await pipeline.call(
            "UpdateMemberProfile", pb.UpdateMemberProfileRequest(member_profile=member, allow_missing=True)
        )
        await pipeline.call(
            "UpdateMemberProfile",
            pb.UpdateMemberProfileRequest(member_profile=member, allow_missing=True),
            tenant="acme",
        )
    await seed_targets(pipeline)
    await seed_paging(pipeline)  # customers, finance facts, reconciliation issues
    await seed_anomalies(pipeline)  # recorded process anomalies
    month = types_pb2.SalesPeriod(granularity=types_pb2.PERIOD_GRANULARITY_MONTH, start_date=in_days(10))
    for tenant in ("demo", "demo", "demo", "demo", "demo", "acme"):
        await pipeline.call(
            "TakeForecastSnapshot", pb.TakeForecastSnapshotRequest(period=month), tenant=tenant
        )
    await seed_calls(pipeline)
    await seed_approval_lists(pipeline.db, pipeline.call)  # flows, delegations, projected approvals
    model = field_gated_model()
    for n in range(4):  # stage model versions 2..5
        model.stages[0].display_name = f"First contact v{n}"
        await use_model(pipeline, model)


async def seed_targets(pipeline: Pipeline) -> None:
    """Rep targets of m0..m5 for this year (each calibrated this week) and of m0..m2 for this quarter."""
    periods = [(types_pb2.PERIOD_GRANULARITY_YEAR, 6), (types_pb2.PERIOD_GRANULARITY_QUARTER, 3)]
    for granularity, reps in periods:
        for n in range(reps):
            target = target_pb2.Target(
                target_id=f"T{granularity}-{n}",
                period=types_pb2.SalesPeriod(granularity=granularity, start_date=in_days(0)),
                level=types_pb2.ORG_LEVEL_REP,
                user_id=f"m{n}",
                committed_amount=Money(amount_minor=100, currency="CNY"),
            )
            await pipeline.call("CreateTarget", pb.CreateTargetRequest(target=target))
    for n in range(6):
        calibration = target_pb2.TargetCalibration(
            calibration_id=f"C{n}",
            target_id=f"T{types_pb2.PERIOD_GRANULARITY_YEAR}-{n}",
            forecast_amount=Money(amount_minor=90, currency="CNY"),
            reason_type=target_pb2.DEVIATION_REASON_TYPE_PROJECT_DELAYED,
        )
        await pipeline.call(
            "CreateTargetCalibration", pb.CreateTargetCalibrationRequest(calibration=calibration)
        )
    for n in range(4):  # four changes of one target after its creation
        change = target_pb2.Target(
            target_id=f"T{types_pb2.PERIOD_GRANULARITY_YEAR}-0",
            committed_amount=Money(amount_minor=101 + n, currency="CNY"),
            challenge_amount=Money(amount_minor=200, currency="CNY"),
        )
        request = pb.UpdateTargetRequest(
            target=change, update_mask=mask("committed_amount", "challenge_amount")
        )
        await pipeline.call("UpdateTarget", request)
    # The same target in another tenant: its changes exist there, and demo's tokens must not serve them.
    other = target_pb2.Target(
        target_id=f"T{types_pb2.PERIOD_GRANULARITY_YEAR}-0",
        period=types_pb2.SalesPeriod(granularity=types_pb2.PERIOD_GRANULARITY_YEAR, start_date=in_days(0)),
        level=types_pb2.ORG_LEVEL_REP,
        user_id="m0",
        committed_amount=Money(amount_minor=100, currency="CNY"),
    )
    await pipeline.call("CreateTarget", pb.CreateTargetRequest(target=other), tenant="acme")


async def seed_calls(pipeline: Pipeline) -> None:
    """Seven calls of rep-a1 (demo and acme), and m0..m5's calls of a closed month, locked (bias subjects)."""
    for tenant in ("demo", "acme"):
        for n in range(7):
            s = forecast_pb2.ForecastSubmission(
                submission_id=f"S{n}",
                period=types_pb2.SalesPeriod(
                    granularity=types_pb2.PERIOD_GRANULARITY_MONTH, start_date=in_days(0)
                ),
                level=types_pb2.ORG_LEVEL_REP,
                commit_amount=Money(amount_minor=100 * n, currency="CNY"),
            )
            req = pb.CreateForecastSubmissionRequest(submission=s)
            await pipeline.call("CreateForecastSubmission", req, user="rep-a1", tenant=tenant)
    month = (date.today().replace(day=1) - timedelta(days=40)).replace(day=1)
    tx = transactions(pipeline.db)
    for n in range(6):
        who = Principal(f"m{n}", "demo", frozenset({"rep"}), "east/team-a", datetime.max.replace(tzinfo=UTC))
        call = forecast_pb2.ForecastSubmission(
            submission_id=f"old-{n}",
            period=types_pb2.SalesPeriod(
                granularity=types_pb2.PERIOD_GRANULARITY_MONTH, start_date=date_proto(month)
            ),
            level=types_pb2.ORG_LEVEL_REP,
            commit_amount=Money(amount_minor=100 + n, currency="CNY"),
        )
        at = datetime(month.year, month.month, 3, tzinfo=UTC)
        await tx.run("demo", seed_history.submit(who, call)(at))
    admin = Principal("admin", "demo", frozenset({"admin"}), "", datetime.max.replace(tzinfo=UTC))
    lock_at = datetime(month.year, month.month, 20, tzinfo=UTC)
    await tx.run("demo", seed_history.lock(admin, month, LockPoint.LAST_WEEK)(lock_at))


def _ordinal(d: Any) -> int:
    return int(d.year * 10_000 + d.month * 100 + d.day)


QUERIES: dict[str, Query] = {
    "ListDeals": Query(
        lambda: pb.ListDealsRequest(order_by="amount desc"),
        "deals",
        lambda d: d.deal_id,
        lambda d: (-d.amount.amount_minor, d.deal_id),
        lambda r: setattr(r, "order_by", "amount"),
        has_total=True,
    ),
    "ListGateReviews": Query(
        lambda: pb.ListGateReviewsRequest(deal_id="D0"),
        "gate_reviews",
        lambda r: r.review_id,
        lambda r: tuple(-ord(c) for c in r.review_id),
        lambda r: setattr(r, "outcome", deal_pb2.GATE_OUTCOME_PASSED),
    ),
    "ListDealChanges": Query(
        lambda: pb.ListDealChangesRequest(deal_id="D0"),
        "changes",
        lambda c: c.change_id,
        lambda c: c.change_id,
        lambda r: r.fields.append("probability"),  # type: ignore[attr-defined]
    ),
    "ListDealEvidence": Query(
        lambda: pb.ListDealEvidenceRequest(deal_id="D0"),
        "evidence",
        lambda e: e.evidence_id,
        lambda e: ((-e.audit.create_time.seconds, -e.audit.create_time.nanos), e.evidence_id),
        lambda r: r.evidence_type_ids.append("quote"),  # type: ignore[attr-defined]
    ),
    "ListForecastSnapshots": Query(
        lambda: pb.ListForecastSnapshotsRequest(),
        "snapshots",
        lambda x: x.snapshot_id,
        lambda x: tuple(-ord(c) for c in x.snapshot_id),
        lambda r: r.take_date_from.CopyFrom(in_days(-1)),  # type: ignore[attr-defined]
    ),
    "ListMemberProfiles": Query(
        lambda: pb.ListMemberProfilesRequest(),
        "member_profiles",
        lambda m: m.user_id,
        lambda m: m.user_id,
        lambda r: setattr(r, "org_path", "east"),
    ),
    "ListTargets": Query(
        lambda: pb.ListTargetsRequest(),
        "targets",
        lambda t: t.target_id,
        lambda t: (
            -_ordinal(t.period.start_date),
            types_pb2.PeriodGranularity.Name(t.period.granularity),
            t.org_path,
            t.user_id,
            t.target_id,
        ),
        lambda r: setattr(r.filter, "user_id", "m1"),  # type: ignore[attr-defined]
    ),
    "ListTargetChanges": Query(
        lambda: pb.ListTargetChangesRequest(target_id=f"T{types_pb2.PERIOD_GRANULARITY_YEAR}-0"),
        "changes",
        lambda c: c.change_id,
        lambda c: c.change_id,
        lambda r: setattr(r, "target_id", f"T{types_pb2.PERIOD_GRANULARITY_YEAR}-1"),
    ),
    "ListTargetCalibrations": Query(
        lambda: pb.ListTargetCalibrationsRequest(),
        "calibrations",
        lambda c: c.calibration_id,
        lambda c: (-_ordinal(c.week_start_date), tuple(-ord(x) for x in c.calibration_id)),
        lambda r: r.filter.reason_types.append(target_pb2.DEVIATION_REASON_TYPE_PROJECT_DELAYED),  # type: ignore[attr-defined]
    ),
    "ListCustomers": Query(
        lambda: pb.ListCustomersRequest(order_by="display_name"),
        "customers",
        lambda c: c.customer_id,
        lambda c: (c.display_name, c.customer_id),
        lambda r: setattr(r, "order_by", "display_name desc"),
        has_total=True,
    ),
    "ListFinanceFacts": Query(
        lambda: pb.ListFinanceFactsRequest(),
        "facts",
        lambda f: f.fact_id,
        lambda f: ((-f.occur_time.seconds, -f.occur_time.nanos), f.fact_id),
        lambda r: setattr(r, "source_system", "other"),
    ),
    "ListReconciliationIssues": Query(
        lambda: pb.ListReconciliationIssuesRequest(order_by="difference_amount desc"),
        "issues",
        lambda i: i.issue_id,
        lambda i: (-i.difference_amount.amount_minor, i.issue_id),
        lambda r: setattr(r, "order_by", "detect_time desc"),
        has_total=True,
    ),
    "ListProcessAnomalies": Query(
        lambda: pb.ListProcessAnomaliesRequest(detect_time_after=Timestamp(seconds=946684800)),
        "anomalies",
        lambda a: a.anomaly_id,
        lambda a: ((-a.detect_time.seconds, -a.detect_time.nanos), a.anomaly_id),
        lambda r: setattr(r, "adverse_only", True),
    ),
    "ListForecastSubmissions": Query(
        lambda: pb.ListForecastSubmissionsRequest(),
        "submissions",
        lambda x: x.submission_id,
        lambda x: ((-x.submit_time.seconds, -x.submit_time.nanos), tuple(-ord(c) for c in x.submission_id)),
        lambda r: setattr(r, "latest_only", True),
    ),
    "ListForecastBias": Query(
        lambda: pb.ListForecastBiasRequest(level=types_pb2.ORG_LEVEL_REP),
        "biases",
        lambda b: b.key,
        lambda b: b.key,
        lambda r: setattr(r, "period_count", 5),
    ),
    "ListApprovalFlows": Query(
        lambda: pb.ListApprovalFlowsRequest(),
        "approval_flows",
        lambda f: f.flow_id,
        lambda f: f.flow_id,
        lambda r: setattr(r, "kind", approval_pb2.APPROVAL_KIND_DISCOUNT),
    ),
    "ListApprovalDelegations": Query(
        lambda: pb.ListApprovalDelegationsRequest(),
        "approval_delegations",
        lambda x: x.delegation_id,
        lambda x: ((-x.start_time.seconds, -x.start_time.nanos), x.delegation_id),
        lambda r: setattr(r, "user_id", "m1"),
    ),
    "ListApprovals": Query(
        lambda: pb.ListApprovalsRequest(),
        "approvals",
        lambda a: a.approval_id,
        lambda a: ((-a.submit_time.seconds, -a.submit_time.nanos), a.approval_id),
        lambda r: setattr(r, "order_by", "submit_time"),
        has_total=True,
    ),
    "ListMyPendingApprovals": Query(
        lambda: pb.ListMyPendingApprovalsRequest(),
        "items",
        lambda i: i.approval.approval_id,
        lambda i: ((i.approval.submit_time.seconds, i.approval.submit_time.nanos), i.approval.approval_id),
        lambda r: setattr(r, "kind", approval_pb2.APPROVAL_KIND_DISCOUNT),
        has_total=True,
    ),
    "ListStageModelVersions": Query(
        lambda: pb.ListStageModelVersionsRequest(),
        "stage_models",
        lambda m: str(m.version),
        lambda m: -m.version,
        lambda r: None,  # one query only: another tenant and forged tokens still checked
    ),
}


def test_every_list_rpc_is_covered() -> None:
    assert set(LIST_RPCS) == set(QUERIES) | NOT_BUILT


async def walk(pipeline: Pipeline, name: str, q: Query, size: int) -> tuple[list[Any], set[int], str]:
    items: list[Any] = []
    totals: set[int] = set()
    token, first_token = "", ""
    for _ in range(100):
        req = q.request()
        req.page_size, req.page_token = size, token  # type: ignore[attr-defined]
        resp = await pipeline.call(name, req)
        items += list(getattr(resp, q.items))
        if q.has_total:
            totals.add(resp.total_size)
        token = resp.next_page_token
        first_token = first_token or token
        if not token:
            return items, totals, first_token
    raise AssertionError("paging never ended")


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_pages_return_every_row_once_in_order(pipeline: Pipeline, name: str) -> None:
    await seed(pipeline)
    q = QUERIES[name]
    everything, _, _ = await walk(pipeline, name, q, 500)
    assert len(everything) >= 4
    expected = [q.ident(i) for i in sorted(everything, key=q.key)]
    assert [q.ident(i) for i in everything] == expected
    for size in range(1, 8):
        items, totals, token = await walk(pipeline, name, q, size)
        assert [q.ident(i) for i in items] == expected, size
        if q.has_total:
            assert totals == {len(expected)}
    # A token serves its own query, in its own tenant, and only if it was made by the service.
    _, _, token = await walk(pipeline, name, q, 1)
    other = q.request()
    q.other(other)
    bad: list[tuple[Message, str]] = (
        [(other, "demo"), (q.request(), "acme")] if other != q.request() else [(q.request(), "acme")]
    )
    forged = q.request()
    forged.page_size, forged.page_token = 1, token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")  # type: ignore[attr-defined]
    bad.append((forged, "demo"))
    for req, tenant in bad:
        if not req.page_token:  # type: ignore[attr-defined]
            req.page_size, req.page_token = 1, token  # type: ignore[attr-defined]
        await refused(pipeline.call(name, req, tenant=tenant), grpc.StatusCode.INVALID_ARGUMENT)


@pytest.mark.parametrize("name", sorted(NOT_BUILT))
async def test_list_rpcs_not_built_answer_unimplemented(pipeline: Pipeline, name: str) -> None:
    request = getattr(pb, f"{name}Request")()
    await refused(pipeline.call(name, request), grpc.StatusCode.UNIMPLEMENTED)
