"""A step's approvers and deadlines, resolved the moment it opens.

Approvers come from the member profiles (role, the deal owner's supervisor, named users), standing
delegations in force then applied; deadlines are computed in the tenant's zone and business calendar.
Shared by the open-step activity (a step opening later in a run) and CreateApproval, which opens the
first steps in its own request so the workflow starts with them open (no activity round trip per step).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta

from kit.calendar import BusinessCalendar
from kit.resources import UnitOfWork
from services.pipeline import pipeline_settings
from services.pipeline.approval_workflows import FirstOpenings, iso
from services.pipeline.domain import approvals as d
from services.pipeline.repositories.approvals import (
    ApprovalDelegations,
    Approvals,
    approvers_with_role,
    managers_of,
)

FIXED = {"MINUTES": 60, "HOURS": 3600, "CALENDAR_DAYS": 86400}


def add_limit(cal: BusinessCalendar, start: datetime, limit: d.Limit) -> datetime:
    """`start` + the limit: wall-clock units as they are, working units on the tenant's calendar."""
    if limit.unit in FIXED:
        return start + timedelta(seconds=FIXED[limit.unit] * limit.value)
    if limit.unit == "WORKING_HOURS":
        return cal.add_business_time(start, timedelta(hours=limit.value))
    return cal.add_business_days(start, limit.value)


async def calendar(uow: UnitOfWork) -> BusinessCalendar:
    s = await pipeline_settings.current(uow)
    zone = s.time_zone or pipeline_settings.DEFAULTS.time_zone
    cal = _CALENDARS.get(zone)
    if cal is None:  # a calendar is immutable and made of its zone alone: built once per zone
        cal = _CALENDARS[zone] = BusinessCalendar.from_config({"timezone": zone})
    return cal


_CALENDARS: dict[str, BusinessCalendar] = {}


async def _approvers(repo: Approvals, step: d.StepDef, deal_owner: str, requester: str) -> list[str]:
    if step.selector == "USERS":
        return list(step.user_ids)
    if step.selector == "APPROVER_ROLE":
        return await approvers_with_role(repo, step.role_key)
    if step.selector == "OWNER_MANAGER":
        who = deal_owner or requester
        return [m] if (m := (await managers_of(repo, [who])).get(who)) else []
    return [deal_owner or requester]


async def openings(
    uow: UnitOfWork, steps: Sequence[d.StepDef], deal_owner: str, requester: str, at: datetime
) -> list[d.Opening]:
    """Each step's opening at `at`: one delegation read for all of them, the calendar only if a limit needs it."""
    repo = Approvals(uow)
    chosen = [await _approvers(repo, step, deal_owner, requester) for step in steps]
    away = await ApprovalDelegations(uow).in_force(sorted({u for users in chosen for u in users}), at)
    cal: BusinessCalendar | None = None
    out = []
    for step, users in zip(steps, chosen, strict=True):
        assignees, acting_for = [], {}
        for u in users:
            if u in away and away[u] not in users:
                assignees.append(away[u])
                acting_for[away[u]] = u
            else:
                assignees.append(u)
        times: list[datetime | None] = []
        for limit in (step.remind, step.escalate, step.fallback, step.due):
            if limit is not None and cal is None:
                cal = await calendar(uow)
            times.append(add_limit(cal, at, limit) if limit is not None and cal is not None else None)
        remind, escalate, fallback, due = times
        if due is not None and (escalate is None or due < escalate):
            escalate = due  # past its due time a step escalates as if idle
        remind_at, escalate_at, fallback_at, due_at = (
            iso(t) if t else None for t in (remind, escalate, fallback, due)
        )
        out.append(
            d.Opening(list(dict.fromkeys(assignees)), acting_for, remind_at, escalate_at, fallback_at, due_at)
        )
    return out


async def first_openings(uow: UnitOfWork, run: d.Run, at: datetime) -> FirstOpenings | None:
    """The openings of the steps a new run opens first, resolved in CreateApproval's own read: the
    workflow starts with them (one activity and one workflow task fewer per start)."""
    # d.start gives the trial new steps and d.ready changes only those and the run's own fields: a
    # shallow copy with its own history list leaves `run` as it was (deepcopy was ~0.4 ms per create).
    trial, when = dataclasses.replace(run, history=list(run.history)), iso(at)
    d.start(trial, when, run.requester)
    keys = d.ready(trial, when)
    if not keys:
        return None
    steps = [trial.definition(k) for k in keys]
    return FirstOpenings(when, keys, await openings(uow, steps, run.deal_owner, run.requester, at))


__all__ = ["FIXED", "add_limit", "calendar", "first_openings", "openings"]
