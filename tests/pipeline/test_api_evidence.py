"""The default stage model end to end: evidence and checklist ticks satisfy gates, rules raise probability."""

from __future__ import annotations

import grpc

from salesops.common.v1.types_pb2 import AttachmentRef, Money
from salesops.pipeline.v1 import deal_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import (
    create,
    field_gated_model,
    in_days,
    mask,
    new_deal,
    precondition,
    refused,
    use_model,
)


def evidence(evidence_id: str, kind: str) -> deal_pb2.DealEvidence:
    return deal_pb2.DealEvidence(
        evidence_id=evidence_id,
        evidence_type_id=kind,
        attachment=AttachmentRef(uri=f"s3://docs/{evidence_id}"),
    )


async def attach(pipeline: Pipeline, deal_id: str, evidence_id: str, kind: str) -> deal_pb2.Deal:
    req = pb.CreateDealEvidenceRequest(deal_id=deal_id, evidence=evidence(evidence_id, kind))
    deal: deal_pb2.Deal = (await pipeline.call("CreateDealEvidence", req, user="rep-a1")).deal
    return deal


async def move(pipeline: Pipeline, deal_id: str, stage: str) -> deal_pb2.Deal:
    req = pb.MoveStageRequest(deal_id=deal_id, to_stage_id=stage)
    deal: deal_pb2.Deal = (await pipeline.call("MoveStage", req, user="rep-a1")).deal
    return deal


async def test_the_default_model_from_first_contact_to_the_won_gate(pipeline: Pipeline) -> None:
    await create(pipeline, new_deal("E1"))
    status = await refused(
        pipeline.call(
            "MoveStage", pb.MoveStageRequest(deal_id="E1", to_stage_id="needs_confirmed"), user="rep-a1"
        )
    )
    assert precondition(status) == [("GATE_EVIDENCE", "needs_confirmed/meeting_minutes")]
    deal = await attach(pipeline, "E1", "ev-1", "meeting_minutes")
    assert list(deal.evidence_type_ids) == ["meeting_minutes"]
    await move(pipeline, "E1", "needs_confirmed")

    # Solution confirmed: signed confirmation OR (minutes AND the review ticked).
    gate = (await pipeline.call("CheckGate", pb.CheckGateRequest(deal_id="E1"), user="rep-a1")).gate_review
    assert [(i.key, i.branch, i.satisfied) for i in gate.items] == [
        ("signed_requirement_confirmation", "rule.any_of[0]", False),
        ("meeting_minutes", "rule.any_of[1].all_of[0]", True),
        ("requirements_reviewed", "rule.any_of[1].all_of[1]", False),
    ]
    ticked = await pipeline.call(
        "SetDealChecklistItem",
        pb.SetDealChecklistItemRequest(
            deal_id="E1", item_id="requirements_reviewed", checked=True, note="with CIO"
        ),
        user="rep-a1",
    )
    assert [(c.item_id, c.checked, c.updated_by) for c in ticked.deal.checklist] == [
        ("requirements_reviewed", True, "rep-a1")
    ]
    await move(pipeline, "E1", "solution_confirmed")

    q = deal_pb2.Qualification(
        budget_min=Money(amount_minor=1, currency="CNY"),
        budget_max=Money(amount_minor=2, currency="CNY"),
        decision_date=in_days(9),
        decision_maker_access=deal_pb2.DECISION_MAKER_ACCESS_SPONSOR,
    )
    await pipeline.call(
        "UpdateDeal",
        pb.UpdateDealRequest(
            deal=deal_pb2.Deal(deal_id="E1", qualification=q), update_mask=mask("qualification")
        ),
        user="rep-a1",
    )
    await move(pipeline, "E1", "proposal_quote")
    await attach(pipeline, "E1", "ev-2", "quote")
    await move(pipeline, "E1", "negotiation")
    await pipeline.call(
        "SetDealChecklistItem",
        pb.SetDealChecklistItemRequest(deal_id="E1", item_id="terms_agreed", checked=True),
        user="rep-a1",
    )
    deal = await move(pipeline, "E1", "contract_approval")
    assert deal.probability_percent == 85

    # A legal draft raises contract approval to 90 %; removing it withdraws the uplift, not the stage.
    deal = await attach(pipeline, "E1", "ev-3", "legal_draft")
    assert (deal.probability_percent, deal.stage_probability_percent, deal.weighted_amount.amount_minor) == (
        90,
        85,
        900_000,
    )
    again = await attach(pipeline, "E1", "ev-3", "legal_draft")  # a replayed upload
    assert again.etag == deal.etag
    listed = await pipeline.call("ListDealEvidence", pb.ListDealEvidenceRequest(deal_id="E1"), user="rep-a1")
    assert {e.evidence_id for e in listed.evidence} == {"ev-1", "ev-2", "ev-3"}
    assert {e.stage_id for e in listed.evidence if e.evidence_id == "ev-3"} == {"contract_approval"}
    dropped = await pipeline.call(
        "DeleteDealEvidence", pb.DeleteDealEvidenceRequest(deal_id="E1", evidence_id="ev-3"), user="rep-a1"
    )
    assert (dropped.deal.stage_id, dropped.deal.probability_percent) == ("contract_approval", 85)

    won = (
        await pipeline.call("CheckGate", pb.CheckGateRequest(deal_id="E1", to_won=True), user="rep-a1")
    ).gate_review
    assert won.to_won and [(i.stage_id, i.key, i.satisfied) for i in won.items] == [
        ("won", "signed_contract", False)
    ]
    changes = (
        await pipeline.call(
            "ListDealChanges", pb.ListDealChangesRequest(deal_id="E1", fields=["probability"]), user="rep-a1"
        )
    ).changes
    assert [c.new_value for c in changes] == ["10", "30", "70", "75", "80", "85", "90", "85"]


async def test_evidence_is_checked_and_scoped(pipeline: Pipeline) -> None:
    await create(pipeline, new_deal("E2"))
    await refused(
        pipeline.call(
            "CreateDealEvidence",
            pb.CreateDealEvidenceRequest(deal_id="E2", evidence=evidence("x", "fax")),
            user="rep-a1",
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await refused(
        pipeline.call(
            "CreateDealEvidence",
            pb.CreateDealEvidenceRequest(deal_id="E2", evidence=evidence("x", "quote")),
            user="rep-b1",
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    await refused(
        pipeline.call(
            "SetDealChecklistItem",
            pb.SetDealChecklistItemRequest(deal_id="E2", item_id="nope", checked=True),
            user="rep-a1",
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await attach(pipeline, "E2", "e2-1", "quote")
    other = pb.CreateDealEvidenceRequest(deal_id="E2", evidence=evidence("e2-1", "legal_draft"))
    await refused(pipeline.call("CreateDealEvidence", other, user="rep-a1"), grpc.StatusCode.ALREADY_EXISTS)
    await refused(
        pipeline.call("ListDealEvidence", pb.ListDealEvidenceRequest(deal_id="E2"), user="rep-a2"),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_check_gate_follows_a_new_model_version_and_new_evidence(pipeline: Pipeline) -> None:
    """CheckGate reuses the parsed model while its version holds: a saved version is seen at once."""
    await create(pipeline, new_deal("E3"))

    async def unmet() -> list[str]:
        req = pb.CheckGateRequest(deal_id="E3", to_stage_id="needs_confirmed")
        review = (await pipeline.call("CheckGate", req, user="rep-a1")).gate_review
        return [i.key for i in review.items if not i.satisfied]

    assert await unmet() == ["meeting_minutes"]
    await use_model(pipeline, field_gated_model())
    assert await unmet() == ["next_step"]
    await pipeline.call(
        "UpdateDeal",
        pb.UpdateDealRequest(
            deal=deal_pb2.Deal(deal_id="E3", next_step="demo"), update_mask=mask("next_step")
        ),
        user="rep-a1",
    )
    assert await unmet() == []
    await attach(pipeline, "E3", "ev-3", "meeting_minutes")  # evidence of a kind the gate no longer asks
    assert await unmet() == []
    await refused(
        pipeline.call("CheckGate", pb.CheckGateRequest(deal_id="E3"), user="rep-b1"),
        grpc.StatusCode.NOT_FOUND,
    )
    await refused(
        pipeline.call("CheckGate", pb.CheckGateRequest(deal_id="E3"), tenant="acme"),
        grpc.StatusCode.NOT_FOUND,
    )
