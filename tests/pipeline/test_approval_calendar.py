"""A technical evaluation due in 2 working days across New Year's Day (a public holiday) and a weekend.

Opened Thursday 2026-12-31 10:00 Asia/Shanghai: Friday 1 January is a holiday, Saturday and
Sunday are the weekend, Monday 4 January is working day 1 and Tuesday 5 January working day 2,
so the step is due Tuesday 10:00 (02:00 UTC), and it escalates then (overdue), not before.
"""

# ruff: noqa: F811  (the `world` fixture is imported from approval_world)
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import struct_pb2

from kit.events import unpack_payload
from salesops.pipeline.v1 import approval_pb2 as ap
from salesops.pipeline.v1 import events_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from tests.leads.helpers import events
from tests.pipeline.approval_world import World, hours, states, world  # noqa: F401

pytestmark = pytest.mark.timeout(300)
OPENED = datetime(2026, 12, 31, 2, 0, tzinfo=UTC)  # Thursday 10:00 in Shanghai
DUE = datetime(2027, 1, 5, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Shanghai


def custom_solution_flow() -> ap.ApprovalFlow:
    evaluation = ap.ApprovalStepDefinition(
        step_key="tech_evaluation",
        display_name="Technical evaluation",
        mode=ap.STEP_MODE_TASK,
        approvers=ap.ApproverSelector(type=ap.APPROVER_SELECTOR_TYPE_APPROVER_ROLE, role_key="tech_lead"),
        due_within=types_pb2.TimeLimit(value=2, unit=types_pb2.TIME_UNIT_WORKING_DAYS),
        form_fields=[
            ap.FormField(key="feasible", label="Feasible", type=ap.FORM_FIELD_TYPE_BOOLEAN, required=True)
        ],
    )
    quote = ap.ApprovalStepDefinition(
        step_key="quote_approval",
        display_name="Quote approval",
        mode=ap.STEP_MODE_APPROVAL,
        approvers=ap.ApproverSelector(type=ap.APPROVER_SELECTOR_TYPE_OWNER_MANAGER),
        after_step_keys=["tech_evaluation"],
    )
    return ap.ApprovalFlow(
        flow_id="custom_solution",
        display_name="Custom solution",
        kind=ap.APPROVAL_KIND_CUSTOM_SOLUTION,
        steps=[evaluation, quote],
        # Idle reminders far off: the due time is what escalates here.
        idle_policy=ap.IdlePolicy(remind_after=hours(24 * 30), escalate_after=hours(24 * 30)),
    )


async def test_two_working_days_skip_the_holiday_and_the_weekend(world: World) -> None:
    await world.flow(custom_solution_flow())
    await world.deal("custom")
    await world.skip_to(OPENED)
    a = await world.call(
        "CreateApproval",
        pb.CreateApprovalRequest(
            approval=ap.Approval(
                approval_id="ap-cs",
                kind=ap.APPROVAL_KIND_CUSTOM_SOLUTION,
                deal_id="custom",
                title="Custom line",
            )
        ),
        "rep-a1",
    )
    step = a.approval.steps[0]
    opened = step.activate_time.ToDatetime(tzinfo=UTC)
    assert opened - OPENED < timedelta(minutes=1)
    # The deadline keeps the time of day it opened at, two working days on.
    assert step.due_time.ToDatetime(tzinfo=UTC) - opened == DUE - OPENED

    async def escalations() -> list[events_pb2.ApprovalStepIdle]:
        found = [
            unpack_payload(e, events_pb2.ApprovalStepIdle)
            for _, e in await events(world.db, "pipeline.ApprovalStepIdle")
        ]
        return [e for e in found if e.action == events_pb2.IDLE_ACTION_ESCALATE]

    await world.skip_to(DUE - timedelta(minutes=10))  # holiday, weekend and Monday passed: not yet due
    assert await escalations() == []
    await world.skip_to(DUE + timedelta(minutes=10))

    async def escalated() -> bool:
        return len(await escalations()) == 1

    await world.until(escalated)
    evt = (await escalations())[0]
    assert evt.overdue and list(evt.escalate_to_user_ids) == ["cfo-1"]  # the tech lead's manager

    # A task step completes with its form; the required field is checked before history.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.call("ApproveApprovalStep", pb.ApproveApprovalStepRequest(approval_id="ap-cs"), "tech-1")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    form = struct_pb2.Struct()
    form.update({"feasible": True})
    done = await world.call(
        "ApproveApprovalStep", pb.ApproveApprovalStepRequest(approval_id="ap-cs", form_values=form), "tech-1"
    )
    assert states(done.approval) == {"tech_evaluation": "APPROVED", "quote_approval": "ACTIVE"}
    assert done.approval.steps[0].form_values["feasible"] is True
    # The next step went to the deal owner's supervisor, resolved when it opened.
    assert list(done.approval.steps[1].assignee_user_ids) == ["sup-a"]
