"""A technical evaluation due in 2 working days across a public holiday and a weekend.

The step opens at 10:00 Asia/Shanghai on the last working day before the next such stretch
(e.g. Thursday 2026-12-31: Friday 1 January is New Year's Day, then the weekend, Monday 4 January
is working day 1 and Tuesday 5 January working day 2), so it is due at 10:00 on the second working
day after it and escalates then (overdue), not before. The stretch is searched from today on (the
time-skipping server starts at the real time and only moves forward), so the test never goes stale.
"""

# ruff: noqa: F811  (the `world` fixture is imported from approval_world)
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf import struct_pb2

from kit.calendar import BusinessCalendar
from kit.events import unpack_payload
from salesops.pipeline.v1 import approval_pb2 as ap
from salesops.pipeline.v1 import events_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from tests.leads.helpers import events
from tests.pipeline.approval_world import World, hours, states, world  # noqa: F401

pytestmark = pytest.mark.timeout(300)
SHANGHAI = ZoneInfo("Asia/Shanghai")
CAL = BusinessCalendar.from_config({"timezone": "Asia/Shanghai"})  # the tenant's default calendar


def across_holiday_and_weekend(today: date) -> tuple[datetime, datetime]:
    """(opened, due): 10:00 on the working day before a stretch off that holds a public holiday on a
    weekday and a weekend day; due at 10:00 on the second working day after it."""
    day = today + timedelta(days=2)
    for _ in range(800):
        if CAL.is_working_day(day) and not CAL.is_working_day(day + timedelta(days=1)):
            between, working, n = [], 0, 0
            while working < 2:
                n += 1
                nxt = day + timedelta(days=n)
                if CAL.is_working_day(nxt):
                    working += 1
                else:
                    between.append(nxt)
            if any(d.weekday() < 5 for d in between) and any(d.weekday() >= 5 for d in between):
                at = datetime.combine(day, time(10), SHANGHAI).astimezone(UTC)
                due = datetime.combine(day + timedelta(days=n), time(10), SHANGHAI).astimezone(UTC)
                return at, due
        day += timedelta(days=1)
    raise AssertionError("no public holiday next to a weekend in the calendar's years")


def test_the_search_finds_new_years_day_2027() -> None:
    opened, due = across_holiday_and_weekend(date(2026, 12, 6))
    assert (opened, due) == (datetime(2026, 12, 31, 2, tzinfo=UTC), datetime(2027, 1, 5, 2, tzinfo=UTC))


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
    OPENED, DUE = across_holiday_and_weekend((await world.now()).astimezone(SHANGHAI).date())
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
