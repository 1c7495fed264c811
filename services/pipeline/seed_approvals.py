"""The shipped approval flows of the demo tenant, written through pipeline's own gRPC API (`make run`).

- `contract_over_500k`: legal, finance risk and the GM in parallel, each must approve; a reminder
  after 24 h (SMS + WeCom), escalation to the approver's manager after 48 h.
- `custom_solution`: requirement form (the owner) -> technical evaluation (a tech lead, at most
  2 working days) -> quote approval (the owner's supervisor) -> customer confirmation (the owner).
- `discount_over_threshold`: a discount of `DISCOUNT_THRESHOLD_BPS` or more -> the owner's
  supervisor, then a sales director.

The demo stage model starts the contract flow when a deal enters negotiation, and contract approval's
gate requires it APPROVED; its trigger decides whether either applies (500,000 and up). Idempotent: an
existing flow is kept as it is.
"""

from __future__ import annotations

import grpc

from kit.seeding import SeedClients, SeedUser
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import approval_pb2 as ap
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import pipeline_service_pb2_grpc, types_pb2

CONTRACT_FLOW = "contract_over_500k"
CUSTOM_FLOW = "custom_solution"
DISCOUNT_FLOW = "discount_over_threshold"
CONTRACT_MIN_MINOR = 50_000_000  # 500,000.00 CNY
DISCOUNT_THRESHOLD_BPS = 1500  # the demo tenant's discount threshold: 15 %
ENTRY_STAGE = "negotiation"  # entering it starts the contract flow
GATED_STAGE = "contract_approval"  # its gate requires the contract flow APPROVED (where it applies)
# Functional positions the flows resolve (MemberProfile.approver_roles), by demo user id / role.
POSITIONS: dict[str, str] = {
    "legal": "legal",
    "finance": "finance_risk",
    "gm": "gm",
    "tech-lead": "tech_lead",
}
DIRECTOR_POSITION = "sales_director"


def approver_roles(user: SeedUser) -> list[str]:
    """The approver positions a demo user holds (their member profile's `approver_roles`)."""
    if user.user_id in POSITIONS:
        return [POSITIONS[user.user_id]]
    return [DIRECTOR_POSITION] if "director" in user.roles else []


def _limit(value: int, unit: types_pb2.TimeUnit.ValueType) -> types_pb2.TimeLimit:
    return types_pb2.TimeLimit(value=value, unit=unit)


def _role(key: str) -> ap.ApproverSelector:
    return ap.ApproverSelector(type=ap.APPROVER_SELECTOR_TYPE_APPROVER_ROLE, role_key=key)


def _of(kind: ap.ApproverSelectorType.ValueType) -> ap.ApproverSelector:
    return ap.ApproverSelector(type=kind)


def contract_flow() -> ap.ApprovalFlow:
    hours = types_pb2.TIME_UNIT_HOURS
    steps = [
        ap.ApprovalStepDefinition(
            step_key=key,
            display_name=name,
            mode=ap.STEP_MODE_APPROVAL,
            approvers=_role(key),
            quorum=ap.STEP_QUORUM_ALL,
        )
        for key, name in (("legal", "Legal"), ("finance_risk", "Finance risk"), ("gm", "General manager"))
    ]
    return ap.ApprovalFlow(
        flow_id=CONTRACT_FLOW,
        display_name="Contract over 500,000",
        kind=ap.APPROVAL_KIND_CONTRACT,
        trigger=ap.ApprovalCondition(min_amount=Money(amount_minor=CONTRACT_MIN_MINOR, currency="CNY")),
        steps=steps,  # no after_step_keys: all three in parallel
        idle_policy=ap.IdlePolicy(
            remind_after=_limit(24, hours),
            escalate_after=_limit(48, hours),
            notify_channels=["sms", "wecom"],
        ),
    )


def custom_solution_flow() -> ap.ApprovalFlow:
    text, boolean = ap.FORM_FIELD_TYPE_TEXT, ap.FORM_FIELD_TYPE_BOOLEAN
    steps = [
        ap.ApprovalStepDefinition(
            step_key="requirement_form",
            display_name="Requirement form",
            mode=ap.STEP_MODE_TASK,
            approvers=_of(ap.APPROVER_SELECTOR_TYPE_DEAL_OWNER),
            form_fields=[ap.FormField(key="requirements", label="Requirements", type=text, required=True)],
        ),
        ap.ApprovalStepDefinition(
            step_key="technical_evaluation",
            display_name="Technical evaluation",
            mode=ap.STEP_MODE_TASK,
            approvers=_role("tech_lead"),
            after_step_keys=["requirement_form"],
            due_within=_limit(2, types_pb2.TIME_UNIT_WORKING_DAYS),
            form_fields=[
                ap.FormField(key="feasible", label="Feasible", type=boolean, required=True),
                ap.FormField(key="effort", label="Effort estimate", type=text),
            ],
        ),
        ap.ApprovalStepDefinition(
            step_key="quote_approval",
            display_name="Quote approval",
            mode=ap.STEP_MODE_APPROVAL,
            approvers=_of(ap.APPROVER_SELECTOR_TYPE_OWNER_MANAGER),
            after_step_keys=["technical_evaluation"],
        ),
        ap.ApprovalStepDefinition(
            step_key="customer_confirmation",
            display_name="Customer confirmation",
            mode=ap.STEP_MODE_TASK,
            approvers=_of(ap.APPROVER_SELECTOR_TYPE_DEAL_OWNER),
            after_step_keys=["quote_approval"],
            form_fields=[
                ap.FormField(key="confirmed", label="Customer confirmed", type=boolean, required=True)
            ],
        ),
    ]
    return ap.ApprovalFlow(
        flow_id=CUSTOM_FLOW,
        display_name="Custom solution",
        kind=ap.APPROVAL_KIND_CUSTOM_SOLUTION,
        steps=steps,
    )


def discount_flow() -> ap.ApprovalFlow:
    steps = [
        ap.ApprovalStepDefinition(
            step_key="supervisor",
            display_name="Supervisor",
            mode=ap.STEP_MODE_APPROVAL,
            approvers=_of(ap.APPROVER_SELECTOR_TYPE_OWNER_MANAGER),
        ),
        ap.ApprovalStepDefinition(
            step_key="director",
            display_name="Director",
            mode=ap.STEP_MODE_APPROVAL,
            approvers=_role(DIRECTOR_POSITION),
            after_step_keys=["supervisor"],
        ),
    ]
    return ap.ApprovalFlow(
        flow_id=DISCOUNT_FLOW,
        display_name="Discount over the threshold",
        kind=ap.APPROVAL_KIND_DISCOUNT,
        trigger=ap.ApprovalCondition(min_discount_bps=DISCOUNT_THRESHOLD_BPS),
        steps=steps,
    )


def flows() -> list[ap.ApprovalFlow]:
    return [contract_flow(), custom_solution_flow(), discount_flow()]


async def seed(clients: SeedClients) -> None:
    """The shipped flows (created once) and the stage model starting the contract flow."""
    md = clients.metadata("admin")
    async with clients.channel("pipeline") as channel:
        stub: pipeline_service_pb2_grpc.PipelineServiceAsyncStub = (
            pipeline_service_pb2_grpc.PipelineServiceStub(channel)  # type: ignore[assignment]
        )
        for flow in flows():
            try:
                await stub.CreateApprovalFlow(
                    pb.CreateApprovalFlowRequest(approval_flow=flow), metadata=md, timeout=10
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.ALREADY_EXISTS:  # seeded before: keep the tenant's edits
                    raise
        await wire_stage_model(stub, md)


async def wire_stage_model(
    stub: pipeline_service_pb2_grpc.PipelineServiceAsyncStub, md: tuple[tuple[str, str], ...]
) -> None:
    """Entering negotiation starts the contract flow, and contract approval requires it APPROVED (both
    only for the deals its trigger matches: 500,000 and up; smaller deals pass that gate without it)."""
    model = (await stub.GetStageModel(pb.GetStageModelRequest(), metadata=md, timeout=10)).stage_model
    entry = next(s for s in model.stages if s.stage_id == ENTRY_STAGE)
    gated = next(s for s in model.stages if s.stage_id == GATED_STAGE)
    changed = False
    if CONTRACT_FLOW not in entry.on_entry_approval_flow_ids:
        entry.on_entry_approval_flow_ids.append(CONTRACT_FLOW)
        changed = True
    if CONTRACT_FLOW not in gated.entry_criteria.required_approval_flow_ids:
        gated.entry_criteria.required_approval_flow_ids.append(CONTRACT_FLOW)
        changed = True
    if changed:
        await stub.UpdateStageModel(pb.UpdateStageModelRequest(stage_model=model), metadata=md, timeout=10)
