"""No write path bypasses the gate engine: every built write RPC is tried on a deal that meets no gate,
each trying to get it past the moment of truth; the deal never leaves a stage it did not pass into.

The set of write RPCs is read from the servicer, so a write RPC added later fails this test until it
is listed here with its attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from google.type import date_pb2  # type: ignore[import-untyped]

from salesops.common.v1.types_pb2 import AttachmentRef
from salesops.pipeline.v1 import (
    approval_pb2,
    customer_pb2,
    deal_pb2,
    forecast_pb2,
    pipeline_service_pb2_grpc,
    reconciliation_pb2,
    settings_pb2,
    stage_model_pb2,
    target_pb2,
    types_pb2,
)
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline.api import PipelineServiceApi
from services.pipeline.stage_models import DEFAULT
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import create, in_days, mask, new_deal

READS = ("Get", "List", "Check", "Summarize", "Compare")
BUILT = {
    name
    for cls in PipelineServiceApi.__mro__
    if cls not in (pipeline_service_pb2_grpc.PipelineServiceServicer, object)
    for name in vars(cls)
    if name[:1].isupper()
}
WRITES = {n for n in BUILT if not n.startswith(READS)}
TARGET = "proposal_quote"
ADMIN_ONLY = ("UpdateStageModel", "UpdatePipelineSettings", "UpdateMemberProfile", "TakeForecastSnapshot")
# Tried as the admin (the rest as G's owner): the admin hands the owner a target, the owner signs it.
AS_ADMIN = frozenset(
    {
        *("UpdateStageModel", "UpdatePipelineSettings", "UpdateMemberProfile", "IngestFinanceFacts"),
        *("CreateTarget", "UpdateTarget", "CreateApprovalFlow", "UpdateApprovalFlow"),
    }
)


def _monday() -> date_pb2.Date:
    monday = date.today() - timedelta(days=date.today().weekday())
    return date_pb2.Date(year=monday.year, month=monday.month, day=monday.day)


def _target(d: deal_pb2.Deal) -> target_pb2.Target:
    """G's owner's target for the year holding this week, committed at G's amount."""
    return target_pb2.Target(
        target_id="T-G",
        period=types_pb2.SalesPeriod(granularity=types_pb2.PERIOD_GRANULARITY_YEAR, start_date=_monday()),
        level=types_pb2.ORG_LEVEL_REP,
        user_id="rep-a1",
        committed_amount=d.amount,
    )


def _full(deal: deal_pb2.Deal) -> deal_pb2.Deal:
    out = deal_pb2.Deal()
    out.CopyFrom(deal)
    out.stage_id, out.etag = TARGET, ""
    return out


def _model_mapping_forward() -> pb.UpdateStageModelRequest:
    model = stage_model_pb2.StageModel()
    model.CopyFrom(DEFAULT)
    model.stages[0].stage_id = "first_touch"  # the deal's stage disappears...
    req = pb.UpdateStageModelRequest(stage_model=model, update_mask=mask("stages"))
    req.stage_mapping["initial_contact"] = TARGET  # ...and its deals are mapped past the gates
    return req


# RPC -> a request trying to move deal G past its gates (given the deal as read).
ATTEMPTS: dict[str, Callable[[deal_pb2.Deal], Any]] = {
    "CreateDeal": lambda d: pb.CreateDealRequest(deal=new_deal("G2", stage_id=TARGET)),
    "UpdateDeal": lambda d: pb.UpdateDealRequest(deal=_full(d), update_mask=mask("*")),
    "MoveStage": lambda d: pb.MoveStageRequest(deal_id="G", to_stage_id=TARGET),
    "MarkWon": lambda d: pb.MarkWonRequest(deal_id="G"),
    "MarkLost": lambda d: pb.MarkLostRequest(
        deal_id="G", category=stage_model_pb2.LOST_REASON_CATEGORY_PRICE
    ),
    "ReopenDeal": lambda d: pb.ReopenDealRequest(
        deal_id="G", stage_id=TARGET, expected_close_date=in_days(9), note="x"
    ),
    "ConfirmDeal": lambda d: pb.ConfirmDealRequest(deal_id="G", next_step="push"),
    "SetDealChecklistItem": lambda d: pb.SetDealChecklistItemRequest(
        deal_id="G", item_id="terms_agreed", checked=True
    ),
    "CreateDealEvidence": lambda d: pb.CreateDealEvidenceRequest(
        deal_id="G",
        evidence=deal_pb2.DealEvidence(
            evidence_id="q", evidence_type_id="quote", attachment=AttachmentRef(uri="s3://q")
        ),
    ),
    "DeleteDealEvidence": lambda d: pb.DeleteDealEvidenceRequest(deal_id="G", evidence_id="q"),
    "UpdateStageModel": lambda d: _model_mapping_forward(),
    "UpdatePipelineSettings": lambda d: pb.UpdatePipelineSettingsRequest(
        settings=settings_pb2.PipelineSettings(converted_deal_close_offset_days=7),
        update_mask=mask("converted_deal_close_offset_days"),
    ),
    "TakeForecastSnapshot": lambda d: pb.TakeForecastSnapshotRequest(
        period=types_pb2.SalesPeriod(granularity=types_pb2.PERIOD_GRANULARITY_YEAR, start_date=in_days(1))
    ),
    # A call resting on G is a figure beside the deal, never a move of it.
    "CreateForecastSubmission": lambda d: pb.CreateForecastSubmissionRequest(
        submission=forecast_pb2.ForecastSubmission(
            period=types_pb2.SalesPeriod(
                granularity=types_pb2.PERIOD_GRANULARITY_MONTH, start_date=in_days(1)
            ),
            level=types_pb2.ORG_LEVEL_REP,
            commit_amount=d.amount,
            commit_deal_ids=["G"],
        )
    ),
    "UpdateMemberProfile": lambda d: pb.UpdateMemberProfileRequest(
        member_profile=settings_pb2.MemberProfile(
            user_id="rep-a1", display_name="A1", org_path="east/team-a", active=True
        ),
        allow_missing=True,
    ),
    # Customers and finance facts never move a deal: a contract, payment and shipment for G.
    "CreateCustomer": lambda d: pb.CreateCustomerRequest(
        customer=customer_pb2.Customer(customer_id="C-G", display_name=d.customer.display_name)
    ),
    "UpdateCustomer": lambda d: pb.UpdateCustomerRequest(
        customer=customer_pb2.Customer(customer_id="C-G", city="Ningbo"), update_mask=mask("city")
    ),
    "IngestFinanceFacts": lambda d: pb.IngestFinanceFactsRequest(
        facts=[
            reconciliation_pb2.FinanceFact(
                kind=kind,
                source_system="erp",
                external_id=f"G-{kind}",
                deal_id="G",
                amount=d.amount,
                occur_time=d.audit.create_time,
            )
            for kind in (
                reconciliation_pb2.FINANCE_FACT_KIND_CONTRACT_SIGNED,
                reconciliation_pb2.FINANCE_FACT_KIND_PAYMENT_RECEIVED,
                reconciliation_pb2.FINANCE_FACT_KIND_SHIPMENT_DISPATCHED,
            )
        ]
    ),
    # Targets and their calibrations are figures beside the deals (the profile above places rep-a1).
    "CreateTarget": lambda d: pb.CreateTargetRequest(target=_target(d)),
    "UpdateTarget": lambda d: pb.UpdateTargetRequest(
        target=target_pb2.Target(target_id="T-G", challenge_amount=d.amount),
        update_mask=mask("challenge_amount"),
    ),
    "SignTarget": lambda d: pb.SignTargetRequest(target_id="T-G", committed_amount=d.amount),
    "CreateTargetCalibration": lambda d: pb.CreateTargetCalibrationRequest(
        calibration=target_pb2.TargetCalibration(
            calibration_id="K-G",
            target_id="T-G",
            week_start_date=_monday(),
            forecast_amount=d.amount,
            reason_type=target_pb2.DEVIATION_REASON_TYPE_COMPETITOR_PRICE_CUT,
        )
    ),
    "ResolveReconciliationIssue": lambda d: pb.ResolveReconciliationIssueRequest(
        issue_id="none", resolution=reconciliation_pb2.RECONCILIATION_RESOLUTION_EXPLAINED, note="x"
    ),
    # Approvals decide nothing about stages themselves: a flow, a request (no flow matches here), actions
    # on an approval that does not exist, a leave; none of them moves the deal.
    "CreateApprovalFlow": lambda d: pb.CreateApprovalFlowRequest(approval_flow=_flow()),
    "UpdateApprovalFlow": lambda d: pb.UpdateApprovalFlowRequest(
        approval_flow=_flow(), update_mask=mask("priority")
    ),
    "CreateApproval": lambda d: pb.CreateApprovalRequest(
        approval=approval_pb2.Approval(
            approval_id="AP-G", kind=approval_pb2.APPROVAL_KIND_DISCOUNT, deal_id=d.deal_id, title="G"
        )
    ),
    "ApproveApprovalStep": lambda d: pb.ApproveApprovalStepRequest(approval_id="none"),
    "RejectApprovalStep": lambda d: pb.RejectApprovalStepRequest(approval_id="none", comment="x"),
    "ReturnApprovalStep": lambda d: pb.ReturnApprovalStepRequest(approval_id="none", comment="x"),
    "DelegateApprovalStep": lambda d: pb.DelegateApprovalStepRequest(
        approval_id="none", delegate_user_id="x"
    ),
    "ResubmitApproval": lambda d: pb.ResubmitApprovalRequest(approval_id="none"),
    "CancelApproval": lambda d: pb.CancelApprovalRequest(approval_id="none"),
    "CreateApprovalDelegation": lambda d: pb.CreateApprovalDelegationRequest(
        approval_delegation=approval_pb2.ApprovalDelegation(
            delegate_user_id="sup-a", start_time=d.audit.create_time, end_time=Timestamp(seconds=4102444800)
        )
    ),
}


def _flow() -> approval_pb2.ApprovalFlow:
    step = approval_pb2.ApprovalStepDefinition(
        step_key="gm",
        display_name="GM",
        mode=approval_pb2.STEP_MODE_APPROVAL,
        approvers=approval_pb2.ApproverSelector(
            type=approval_pb2.APPROVER_SELECTOR_TYPE_USERS, user_ids=["admin"]
        ),
    )
    return approval_pb2.ApprovalFlow(
        flow_id="contract_g",
        display_name="G",
        kind=approval_pb2.APPROVAL_KIND_CONTRACT,
        steps=[step],
        priority=1,
    )


def test_every_write_rpc_is_tried() -> None:
    assert set(ATTEMPTS) == WRITES


async def test_no_write_path_moves_a_deal_past_a_gate_it_does_not_pass(pipeline: Pipeline) -> None:
    deal = await create(pipeline, new_deal("G"), user="rep-a1")
    outcomes: dict[str, str] = {}
    lose = pb.MarkLostRequest(deal_id="G", category=stage_model_pb2.LOST_REASON_CATEGORY_PRICE)
    back = pb.ReopenDealRequest(deal_id="G", expected_close_date=in_days(9), note="back")
    for name, attempt in ATTEMPTS.items():
        if name == "ReopenDeal":  # reopening applies to a lost deal: lose it first
            await pipeline.call("MarkLost", lose, user="rep-a1")
        current = (await pipeline.call("GetDeal", pb.GetDealRequest(deal_id="G"), user="rep-a1")).deal
        user = "admin" if name in AS_ADMIN else "rep-a1"
        try:
            await pipeline.call(name, attempt(current), user=user)
            outcomes[name] = "OK"
        except grpc.aio.AioRpcError as exc:
            outcomes[name] = exc.code().name
        after = (await pipeline.call("GetDeal", pb.GetDealRequest(deal_id="G"), user="rep-a1")).deal
        assert after.stage_id == "initial_contact", (name, after.stage_id)
        if after.status == deal_pb2.DEAL_STATUS_LOST:  # put it back for the attempts that follow
            await pipeline.call("ReopenDeal", back, user="rep-a1")
    # The gated ones were refused by the gate (or as an invalid stage change), the rest did their own job.
    assert outcomes["CreateDeal"] == outcomes["MoveStage"] == outcomes["MarkWon"] == "FAILED_PRECONDITION"
    assert outcomes["UpdateDeal"] == "INVALID_ARGUMENT"
    assert outcomes["UpdateStageModel"] == "FAILED_PRECONDITION"
    assert outcomes["ReopenDeal"] == "INVALID_ARGUMENT"  # not beyond the stage it was lost at
    assert deal.stage_id == "initial_contact"
    # The target attempts did their own job (a refusal would prove nothing about the gates).
    assert {
        n: outcomes[n] for n in ("CreateTarget", "UpdateTarget", "SignTarget", "CreateTargetCalibration")
    } == {n: "OK" for n in ("CreateTarget", "UpdateTarget", "SignTarget", "CreateTargetCalibration")}
    assert {
        n: outcomes[n] for n in ("CreateApprovalFlow", "UpdateApprovalFlow", "CreateApprovalDelegation")
    } == {n: "OK" for n in ("CreateApprovalFlow", "UpdateApprovalFlow", "CreateApprovalDelegation")}
    assert outcomes["CreateApproval"] == "FAILED_PRECONDITION"  # no DISCOUNT flow: nothing started
    assert outcomes["ApproveApprovalStep"] == outcomes["CancelApproval"] == "NOT_FOUND"
