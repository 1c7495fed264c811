"""Approval flows (admin): validated, versioned definitions; and the contract <-> domain terms of a flow.

Every update stores a new version row and retires the previous one, so a running
approval (which carries its version's steps in its workflow) never changes under it.
"""

from __future__ import annotations

import json
from datetime import datetime

from google.protobuf import json_format
from google.protobuf.field_mask_pb2 import FieldMask

from kit.auth import Principal
from kit.errors import Aborted, AlreadyExists, FieldViolation, InvalidArgument, NotFound
from kit.resources import UnitOfWork
from salesops.pipeline.v1 import approval_pb2 as ap
from salesops.pipeline.v1 import types_pb2
from services.pipeline import access, pipeline_settings
from services.pipeline.convert import enum_name, ts
from services.pipeline.domain import approvals as d
from services.pipeline.repositories.approvals import ApprovalFlows
from services.pipeline.store_approvals import ApprovalFlowRow

DAY = types_pb2.TimeLimit(value=24, unit=types_pb2.TIME_UNIT_HOURS)
MUTABLE = (
    "display_name",
    "description",
    "kind",
    "trigger",
    "priority",
    "request_form",
    "steps",
    "idle_policy",
    "disabled",
)


def _limit(t: types_pb2.TimeLimit, default: types_pb2.TimeLimit | None = None) -> d.Limit | None:
    if not t.value:
        t = default or t
    return d.Limit(t.value, enum_name(types_pb2.TimeUnit, t.unit)) if t.value else None


def condition_of(c: ap.ApprovalCondition) -> d.Condition | None:
    if not c.ByteSize():
        return None
    return d.Condition(
        c.min_amount.amount_minor if c.HasField("min_amount") else None,
        c.min_discount_bps,
        list(c.product_lines),
    )


def steps_of(flow: ap.ApprovalFlow) -> list[d.StepDef]:
    """The flow's steps in the domain's terms (idle policy: the step's, else the flow's, else the defaults)."""
    out = []
    for s in flow.steps:
        idle = s.idle_policy if s.HasField("idle_policy") else flow.idle_policy
        out.append(
            d.StepDef(
                key=s.step_key,
                display_name=s.display_name,
                mode=enum_name(ap.StepMode, s.mode) or "APPROVAL",
                selector=enum_name(ap.ApproverSelectorType, s.approvers.type),
                user_ids=list(s.approvers.user_ids),
                role_key=s.approvers.role_key,
                quorum=enum_name(ap.StepQuorum, s.quorum) or "COUNT",
                required=s.required_approvals or 1,
                after=list(s.after_step_keys),
                condition=condition_of(s.condition),
                due=_limit(s.due_within),
                remind=_limit(idle.remind_after, DAY),
                repeat=_limit(idle.repeat_every, DAY),
                escalate=_limit(idle.escalate_after, DAY),
                escalate_to=enum_name(ap.EscalationTargetType, idle.escalate_to) or "APPROVER_MANAGER",
                escalate_user_ids=list(idle.escalate_to_user_ids),
                escalate_role=idle.escalate_to_role_key,
                escalation_assigns=idle.escalation_assigns,
                channels=list(idle.notify_channels),
                fallback=_limit(idle.fallback_after),
                fallback_action=enum_name(ap.FallbackAction, idle.fallback_action),
                fallback_user_ids=list(idle.fallback_user_ids),
                keep_on_resubmit=s.on_resubmit == ap.RESUBMIT_POLICY_KEEP_UNLESS_CONCERNED,
                concern=list(s.concern_fields),
                form_required=[f.key for f in s.form_fields if f.required],
            )
        )
    return out


def facts_of(a: ap.Approval) -> d.Facts:
    form = {k: json.dumps(v, sort_keys=True) for k, v in json_format.MessageToDict(a.form_values).items()}
    return d.Facts(
        amount_minor=a.amount.amount_minor,
        currency=a.amount.currency,
        discount_bps=a.discount_bps,
        product_lines=sorted(a.product_lines),
        summary=a.summary,
        attachments=[r.SerializeToString(deterministic=True).hex() for r in a.attachments],
        form=form,
    )


def _time_problems(at: str, t: types_pb2.TimeLimit) -> list[FieldViolation]:
    if not t.ByteSize():
        return []
    if t.value <= 0 or not t.unit:
        return [FieldViolation(at, "a positive value and a unit")]
    return []


def _idle_problems(at: str, p: ap.IdlePolicy) -> list[FieldViolation]:
    out: list[FieldViolation] = []
    for name in ("remind_after", "repeat_every", "escalate_after", "fallback_after"):
        out += _time_problems(f"{at}.{name}", getattr(p, name))
    if p.escalate_to == ap.ESCALATION_TARGET_TYPE_USERS and not p.escalate_to_user_ids:
        out.append(FieldViolation(f"{at}.escalate_to_user_ids", "required for USERS"))
    if p.escalate_to == ap.ESCALATION_TARGET_TYPE_APPROVER_ROLE and not p.escalate_to_role_key:
        out.append(FieldViolation(f"{at}.escalate_to_role_key", "required for APPROVER_ROLE"))
    if p.fallback_action and not p.fallback_after.value:
        out.append(FieldViolation(f"{at}.fallback_after", "required with a fallback action"))
    if p.fallback_action == ap.FALLBACK_ACTION_ASSIGN and not p.fallback_user_ids:
        out.append(FieldViolation(f"{at}.fallback_user_ids", "required for ASSIGN"))
    return out


def validate(flow: ap.ApprovalFlow, currency: str) -> None:
    """Every problem of a flow at once (INVALID_ARGUMENT with a violation per field)."""
    v: list[FieldViolation] = []
    if (
        not flow.flow_id
        or not flow.flow_id.replace("_", "").isalnum()
        or not flow.flow_id.islower()
        or len(flow.flow_id) > 64
    ):
        v.append(FieldViolation("approval_flow.flow_id", "lower snake case, at most 64 characters"))
    if not flow.display_name.strip():
        v.append(FieldViolation("approval_flow.display_name", "required"))
    if not flow.kind:
        v.append(FieldViolation("approval_flow.kind", "required"))
    if not 1 <= len(flow.steps) <= 20:
        v.append(FieldViolation("approval_flow.steps", "1 to 20 steps"))
    if flow.trigger.HasField("min_amount") and flow.trigger.min_amount.currency not in ("", currency):
        v.append(
            FieldViolation(
                "approval_flow.trigger.min_amount.currency", f"the tenant's base currency {currency}"
            )
        )
    v += _idle_problems("approval_flow.idle_policy", flow.idle_policy)
    for i, s in enumerate(flow.steps):
        at = f"approval_flow.steps[{i}]"
        if not s.step_key or len(s.step_key) > 64:
            v.append(FieldViolation(f"{at}.step_key", "required, at most 64 characters"))
        if not s.display_name.strip():
            v.append(FieldViolation(f"{at}.display_name", "required"))
        sel = s.approvers
        if not sel.type:
            v.append(FieldViolation(f"{at}.approvers.type", "required"))
        if sel.type == ap.APPROVER_SELECTOR_TYPE_USERS and not sel.user_ids:
            v.append(FieldViolation(f"{at}.approvers.user_ids", "required for USERS"))
        if sel.type == ap.APPROVER_SELECTOR_TYPE_APPROVER_ROLE and not sel.role_key:
            v.append(FieldViolation(f"{at}.approvers.role_key", "required for APPROVER_ROLE"))
        if s.required_approvals < 0:
            v.append(FieldViolation(f"{at}.required_approvals", "not negative"))
        v += _time_problems(f"{at}.due_within", s.due_within)
        v += _idle_problems(f"{at}.idle_policy", s.idle_policy)
        for j, c in enumerate(s.concern_fields):
            if c not in d.FACT_FIELDS and c != "form_values" and not c.startswith("form_values."):
                v.append(
                    FieldViolation(
                        f"{at}.concern_fields[{j}]", "a field of the approval a resubmission may change"
                    )
                )
    v += [FieldViolation("approval_flow.steps", p) for p in d.order_problems(steps_of(flow))]
    if v:
        said = "; ".join(f"{x.field}: {x.description}" for x in v[:5])
        raise InvalidArgument(f"the approval flow has {len(v)} problem(s): {said}", v)


def document(row: ApprovalFlowRow) -> ap.ApprovalFlow:
    flow = ap.ApprovalFlow.FromString(row.body)
    flow.version = row.version
    flow.etag = f'"{row.version}"'
    return flow


def _store(
    uow: UnitOfWork, flow: ap.ApprovalFlow, version: int, who: Principal, at: datetime, created: datetime
) -> ApprovalFlowRow:
    flow.version = version
    flow.audit.update_time.CopyFrom(ts(at))
    flow.audit.updated_by = who.user_id
    if version == 1:
        flow.audit.create_time.CopyFrom(ts(created))
        flow.audit.created_by = who.user_id
    flow.ClearField("etag")
    return ApprovalFlowRow(
        tenant_id=uow.tenant,
        flow_id=flow.flow_id,
        version=version,
        current=True,
        kind=enum_name(ap.ApprovalKind, flow.kind),
        disabled=flow.disabled,
        priority=flow.priority,
        created_at=at,
        created_by=who.user_id,
        body=flow.SerializeToString(deterministic=True),
    )


async def create(
    uow: UnitOfWork, who: Principal, flow: ap.ApprovalFlow, validate_only: bool, at: datetime
) -> ap.ApprovalFlow:
    access.require_admin(who)
    flow = _input(flow)
    validate(flow, await pipeline_settings.base_currency(uow))
    repo = ApprovalFlows(uow)
    existing = await repo.current(flow.flow_id)
    if existing is not None:
        if _input(document(existing)) == flow:
            return document(existing)
        raise AlreadyExists("pipeline.ApprovalFlow", flow.flow_id)
    row = _store(uow, flow, 1, who, at, at)
    if validate_only:
        return document(row)
    await repo.add(row)
    return document(row)


def _input(flow: ap.ApprovalFlow) -> ap.ApprovalFlow:
    out = ap.ApprovalFlow()
    out.CopyFrom(flow)
    for name in ("version", "audit", "etag"):
        out.ClearField(name)
    return out


async def get(uow: UnitOfWork, who: Principal, flow_id: str, version: int = 0) -> ap.ApprovalFlow:
    """Every member reads flows (requesters choose one, approvers see what they decide)."""
    repo = ApprovalFlows(uow)
    row = await (repo.find(flow_id, version) if version else repo.current(flow_id))
    if row is None:
        raise NotFound("pipeline.ApprovalFlow", flow_id if not version else f"{flow_id}@{version}")
    return document(row)


async def update(
    uow: UnitOfWork, who: Principal, flow: ap.ApprovalFlow, mask: FieldMask, validate_only: bool, at: datetime
) -> ap.ApprovalFlow:
    access.require_admin(who)
    repo = ApprovalFlows(uow)
    row = await repo.current(flow.flow_id, for_update=True)
    if row is None:
        raise NotFound("pipeline.ApprovalFlow", flow.flow_id)
    if flow.etag and flow.etag != f'"{row.version}"':
        raise Aborted(f'the flow changed since it was read (etag "{row.version}")', reason="ETAG_MISMATCH")
    merged = document(row)
    paths = list(mask.paths) or list(MUTABLE)
    for p in paths:
        top = p.split(".")[0]
        if top not in MUTABLE:
            raise InvalidArgument.field("update_mask", f"{p!r} cannot be changed")
        merged.ClearField(top)  # type: ignore[arg-type]
        if top in ("request_form", "steps"):
            getattr(merged, top).extend(getattr(flow, top))
        elif top in ("trigger", "idle_policy"):
            if flow.HasField(top):  # type: ignore[arg-type]
                getattr(merged, top).CopyFrom(getattr(flow, top))
        else:
            setattr(merged, top, getattr(flow, top))
    created = document(row).audit.create_time.ToDatetime()
    for name in ("version", "etag"):
        merged.ClearField(name)
    validate(merged, await pipeline_settings.base_currency(uow))
    new = _store(uow, merged, row.version + 1, who, at, created)
    if validate_only:
        return document(new)
    await repo.retire(flow.flow_id)
    await uow.session.flush()
    await repo.add(new)
    return document(new)


__all__ = ["condition_of", "create", "document", "facts_of", "get", "steps_of", "update", "validate"]
