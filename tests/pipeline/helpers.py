"""Builders for pipeline API tests: a stage model gated on fields and checklist, deals, error details."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from google.type import date_pb2  # type: ignore[import-untyped]

from kit.grpc.errors import status_from_error
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import deal_pb2, stage_model_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline.stage_models import DEFAULT


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def in_days(n: int) -> date_pb2.Date:
    d = date.today() + timedelta(days=n)
    return date_pb2.Date(year=d.year, month=d.month, day=d.day)


def field_gated_model() -> stage_model_pb2.StageModel:
    """The default model with needs_confirmed gated on next_step instead of evidence (no upload needed)."""
    model = stage_model_pb2.StageModel()
    model.CopyFrom(DEFAULT)
    needs = model.stages[1]
    needs.entry_criteria.Clear()
    needs.entry_criteria.required_fields.add(field_path="next_step", display_name="Next step")
    solution = model.stages[2]
    solution.entry_criteria.Clear()
    rule = solution.entry_criteria.rule
    rule.any_of.criteria.add(checklist_item_id="requirements_reviewed")
    rule.any_of.criteria.add(required_field=stage_model_pb2.RequiredField(field_path="custom_fields.req_doc"))
    return model


async def use_model(pipeline: Any, model: stage_model_pb2.StageModel) -> stage_model_pb2.StageModel:
    resp = await pipeline.call("UpdateStageModel", pb.UpdateStageModelRequest(stage_model=model))
    model_out: stage_model_pb2.StageModel = resp.stage_model
    return model_out


def new_deal(deal_id: str, *, amount: int = 1_000_000, owner: str = "", **kw: Any) -> deal_pb2.Deal:
    kw.setdefault("expected_close_date", in_days(30))
    return deal_pb2.Deal(
        deal_id=deal_id,
        title=f"Deal {deal_id}",
        customer=deal_pb2.DealCustomer(display_name=f"Customer of {deal_id}", industry="mfg"),
        owner_user_id=owner,
        amount=Money(amount_minor=amount, currency="CNY"),
        **kw,
    )


async def create(pipeline: Any, deal: deal_pb2.Deal, user: str = "rep-a1") -> deal_pb2.Deal:
    made: deal_pb2.Deal = (await pipeline.call("CreateDeal", pb.CreateDealRequest(deal=deal), user=user)).deal
    return made


async def refused(call: Any, code: grpc.StatusCode = grpc.StatusCode.FAILED_PRECONDITION) -> Any:
    """Await `call` expecting `code`; the google.rpc.Status it carried."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == code, err.value.details()
    return status_from_error(err.value)


def precondition(status: Any) -> list[tuple[str, str]]:
    detail = error_details_pb2.PreconditionFailure()
    next(d for d in status.details if d.Is(detail.DESCRIPTOR)).Unpack(detail)
    return [(v.type, v.subject) for v in detail.violations]


def error_info(status: Any) -> error_details_pb2.ErrorInfo:
    info = error_details_pb2.ErrorInfo()
    next(d for d in status.details if d.Is(info.DESCRIPTOR)).Unpack(info)
    return info


def bad_fields(status: Any) -> list[str]:
    detail = error_details_pb2.BadRequest()
    next(d for d in status.details if d.Is(detail.DESCRIPTOR)).Unpack(detail)
    return [v.field for v in detail.field_violations]
