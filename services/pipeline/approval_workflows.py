"""One durable workflow per approval (Temporal workflow code: deterministic, workflow APIs only).

`pipeline-approval/<tenant>/<approval id>` holds the approval's `Run` (domain/approvals.py).
Every decision is an Update whose validator runs the domain's checks, so a wrong person, a
wrong state or a stale etag is refused before it enters history; an action id seen before
returns its first result. Handlers change the run and wait until the main loop has settled it
(next steps opened by activities, the projection written), so a caller reads its own write.
Waits are timers to the earliest reminder / escalation / fallback of an active step; an
approval may wait for ever: the history is kept short by continue-as-new.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from services.pipeline.approval_codec import decode, encode
from services.pipeline.approval_lost_workflows import (
    CANCEL_OF_LOST,
    LOST_WORKFLOW_NAME,
    LostDealApprovalsWorkflow,
    LostDealInput,
    lost_workflow_id,
)
from services.pipeline.approval_messages import (
    EscalationInput,
    EventSpec,
    Openings,
    OpenInput,
    OpenStepsInput,
    RecordInput,
    TimeInput,
    TimeResult,
    Users,
)
from services.pipeline.domain import approvals as d

WORKFLOW_NAME = "PipelineApproval"
OPEN_STEP = "pipeline.approval_open_step"
OPEN_STEPS = "pipeline.approval_open_steps"
NEXT_TIME = "pipeline.approval_next_time"
ESCALATION = "pipeline.approval_escalation_targets"
RECORD = "pipeline.approval_record"
QUERY = "approval"
# Runs started from this patch on call their activities as local activities (in the worker: no task
# queue round trip per call) and open the ready steps concurrently. Histories without its marker (runs
# started before) replay the old way: one scheduled activity at a time.
LOCAL_ACTIVITIES = "approval-local-activities"
# Runs started from this patch on open the steps that become ready together with one local activity
# (one read of the org and the calendar for all of them) instead of one per step.
OPEN_TOGETHER = "approval-open-together"
# Runs started with ApprovalInput.version >= 1 take both patches' paths without asking: the choice is in
# their input (in history), so no patch marker and no TemporalChangeVersion search attribute upsert is
# written per start (four history events and two visibility writes on the server). Inputs without the
# field (runs started before) read 0 and ask the patches as they did.
INPUT_VERSION = 2
# From input version 2 the wait's timer is kept across changes that leave the earliest deadline as it was
# (an approve that does not finish a step): no cancel and new timer per action. Earlier runs (in history
# with version 0 or 1) replay the old way: a timer per wait, cancelled when anything changes.
STEADY_TIMER = 2
UPDATES = ("approve", "reject", "return_for_changes", "delegate", "resubmit", "cancel")
KEEP_ACTION_IDS = 500
FIRST_SLACK = timedelta(seconds=30)


def workflow_id(tenant: str, approval_id: str) -> str:
    return f"pipeline-approval/{tenant}/{approval_id}"


def iso(at: datetime) -> str:
    """The one text form of an instant (fixed width, UTC) so instants compare as text."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass
class FirstOpenings:
    """The first ready steps' openings, resolved by CreateApproval in its own read at `at`."""

    at: str
    keys: list[str]
    openings: list[d.Opening]


@dataclass
class ApprovalInput:
    run: d.Run
    client: str = ""
    started: bool = False  # True after continue-as-new: the submission is already recorded
    history_limit: int = 4000  # events before continue-as-new (tests set it low)
    # Given, the first steps open with these (no activity for them) when the workflow finds the same
    # steps ready within FIRST_SLACK of `at`; otherwise, and in runs started without it, the activity
    # opens them. The choice follows the input and the workflow's clock, both in history: replay-safe.
    first: FirstOpenings | None = None
    version: int = 0  # INPUT_VERSION for runs started now; carried across continue-as-new


@dataclass
class ActionInput:
    actor: str
    action_id: str = ""
    step_key: str = ""
    comment: str = ""
    form: dict[str, str] = field(default_factory=dict)
    etag: str = ""
    client: str = ""
    is_admin: bool = False
    delegate_to: str = ""
    facts: d.Facts | None = None
    restart_all: bool = False


@dataclass
class ActionResult:
    seq: int
    state: str
    changed: bool = True


T = TypeVar("T")


def _guarded(check: Callable[[], T]) -> T:
    """A domain refusal as the failure the caller sees (its code is the error type)."""
    try:
        return check()
    except d.Refused as exc:
        raise ApplicationError(exc.message, type=exc.code, non_retryable=True) from None


@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class ApprovalWorkflow:
    # The input arrives as plain JSON, decoded by approval_codec (Temporal's decode of a Run resolved
    # every nested dataclass's type hints: 2-3 ms per start); the payload is the same either way.
    @workflow.init
    def __init__(self, raw: dict[str, Any]) -> None:
        self.inp = decode(ApprovalInput, raw)
        self.run_: d.Run | None = self.inp.run
        self.settled = -1
        self.events: list[EventSpec] = []
        self.completed_sent = False
        self.local = False  # set by run() from the patch marker, before its first command
        self.together = False  # likewise (OPEN_TOGETHER; only with local activities)
        self.first = None if self.inp.started else self.inp.first
        self.timer: asyncio.Task[None] | None = None  # STEADY_TIMER: the running wait and its deadline
        self.timer_at: str | None = None

    @property
    def r(self) -> d.Run:
        assert self.run_ is not None
        return self.run_

    def _now(self) -> str:
        return iso(workflow.now())

    @workflow.query(name=QUERY)
    def state(self) -> d.Run:
        return self.r

    # ------------------------------------------------------------ the main loop

    @workflow.run
    async def run(self, raw: dict[str, Any]) -> ActionResult:
        inp = self.inp
        if inp.version >= 1:
            self.local = self.together = True
        else:
            self.local = workflow.patched(LOCAL_ACTIVITIES)
            self.together = self.local and workflow.patched(OPEN_TOGETHER)
        self.run_ = inp.run
        if not inp.started:
            d.start(self.r, self._now(), self.r.requester, inp.client)
            self.events.append(EventSpec("REQUESTED"))
        while True:
            await self._settle()
            if self.r.state in d.FINAL:
                break
            if workflow.info().get_current_history_length() > inp.history_limit or (
                workflow.info().is_continue_as_new_suggested()
            ):
                # Handlers wait for this loop to settle their change: wait for them or for a change, never both.
                await workflow.wait_condition(
                    lambda: workflow.all_handlers_finished() or self.r.seq != self.settled
                )
                if workflow.all_handlers_finished() and self.r.seq == self.settled:
                    workflow.continue_as_new(
                        ApprovalInput(self.r, inp.client, True, inp.history_limit, version=inp.version)
                    )
                continue
            seen = self.r.seq
            deadline = d.next_deadline(self.r)
            if inp.version >= STEADY_TIMER:
                if await self._wait_steady(seen, deadline):
                    await self._fire_due()
                continue
            timeout = None
            if deadline is not None:
                timeout = max(datetime.fromisoformat(deadline) - workflow.now(), timedelta(milliseconds=1))
            try:
                await workflow.wait_condition(lambda seen=seen: self.r.seq != seen, timeout=timeout)  # type: ignore[misc]
            except TimeoutError:
                await self._fire_due()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return ActionResult(self.r.seq, self.r.state)

    async def _wait_steady(self, seen: int, deadline: str | None) -> bool:
        """Wait for a change or the deadline (True: it is due). The timer runs on across changes that keep
        the deadline; a new deadline cancels it and starts another."""
        if deadline != self.timer_at:
            if self.timer is not None:
                self.timer.cancel()
            self.timer, self.timer_at = None, deadline
            if deadline is not None:
                left = max(datetime.fromisoformat(deadline) - workflow.now(), timedelta(milliseconds=1))
                self.timer = asyncio.create_task(asyncio.sleep(left.total_seconds()))
        timer = self.timer
        if timer is None:
            await workflow.wait_condition(lambda: self.r.seq != seen)
            return False
        await workflow.wait_condition(lambda: self.r.seq != seen or timer.done())
        if not timer.done():
            return False
        self.timer, self.timer_at = None, None
        return True

    async def _activity(self, name: str, arg: object, result_type: type) -> object:
        retry = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
        if self.local:
            return await workflow.execute_local_activity(
                name,
                arg,
                result_type=result_type,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=retry,
            )
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=retry,
        )

    async def _open(self, keys: list[str]) -> None:
        """Resolve the ready steps' approvers and deadlines (concurrently under the patch) and activate them."""
        first, self.first = self.first, None
        if (
            first is not None
            and first.keys == keys
            and abs(datetime.fromisoformat(first.at) - workflow.now()) <= FIRST_SLACK
        ):
            for key, given in zip(keys, first.openings, strict=True):
                s = d.activate(self.r, key, given, first.at)  # the instant its deadlines count from
                self.events.append(EventSpec("WAITING", key, users=list(s.assignees)))
            return
        if not self.local:
            for key in keys:
                defn, at = self.r.definition(key), self._now()  # deadlines and activation on one instant
                opening = await self._activity(
                    OPEN_STEP,
                    OpenInput(self.r.tenant, defn, self.r.deal_owner, self.r.requester, at),
                    d.Opening,
                )
                assert isinstance(opening, d.Opening)
                s = d.activate(self.r, key, opening, at)
                self.events.append(EventSpec("WAITING", key, users=list(s.assignees)))
            return
        at, opened = self._now(), list[object]()
        if self.together:
            steps = [self.r.definition(k) for k in keys]
            got = await self._activity(
                OPEN_STEPS,
                OpenStepsInput(self.r.tenant, steps, self.r.deal_owner, self.r.requester, at),
                Openings,
            )
            assert isinstance(got, Openings)
            opened.extend(got.openings)
        else:
            calls = [
                self._activity(
                    OPEN_STEP,
                    OpenInput(self.r.tenant, self.r.definition(key), self.r.deal_owner, self.r.requester, at),
                    d.Opening,
                )
                for key in keys
            ]
            opened.extend(await asyncio.gather(*calls))
        for key, opening in zip(keys, opened, strict=True):
            assert isinstance(opening, d.Opening)
            s = d.activate(self.r, key, opening, at)
            self.events.append(EventSpec("WAITING", key, users=list(s.assignees)))

    async def _settle(self) -> None:
        """Open every step that is ready (its approvers resolved now), then write the projection."""
        while True:
            keys = d.ready(self.r, self._now())
            if not keys:
                break
            await self._open(keys)
        if self.r.state in d.FINAL and not self.completed_sent:
            self.completed_sent = True
            self.events.append(EventSpec("COMPLETED"))
        if self.settled == self.r.seq and not self.events:
            return
        seq, events = self.r.seq, self.events
        self.events = []
        fresh = self.settled < 0 and not self.inp.started  # encode: the dataclass's JSON without asdict
        await self._activity(RECORD, encode(RecordInput(self.r, events, fresh)), type(None))
        self.r.recorded = len(self.r.history)
        self.settled = max(self.settled, seq)

    async def _fire_due(self) -> None:
        now = self._now()
        for key, what in d.due_now(self.r, now):
            s, defn = self.r.step(key), self.r.definition(key)
            if s.state != d.ACTIVE:
                continue
            overdue = bool(s.due_time and s.due_time <= now)
            if what == "REMIND":
                planned, nxt = s.next_reminder or now, None
                if defn.repeat is not None:
                    t = await self._activity(
                        NEXT_TIME, TimeInput(self.r.tenant, s.next_reminder or now, defn.repeat), TimeResult
                    )
                    assert isinstance(t, TimeResult)
                    nxt = max(t.at, iso(workflow.now() + timedelta(seconds=1)))
                d.reminded(self.r, s, now, nxt)
                self.events.append(
                    EventSpec("IDLE", key, "REMIND", list(s.assignees), overdue=overdue, at=planned)
                )
            elif what == "ESCALATE":
                planned = s.escalate_at or now
                to = await self._activity(
                    ESCALATION, EscalationInput(self.r.tenant, defn, list(s.assignees)), Users
                )
                assert isinstance(to, Users)
                d.escalated(self.r, s, now, to.user_ids, defn.escalation_assigns)
                self.events.append(
                    EventSpec("IDLE", key, "ESCALATE", list(to.user_ids), overdue=overdue, at=planned)
                )
            else:
                before = list(s.assignees)
                d.fell_back(self.r, s, now)
                added = [u for u in s.assignees if u not in before]
                if added:
                    self.events.append(EventSpec("WAITING", key, users=added, reassigned=True))

    # ------------------------------------------------------------ updates

    @workflow.update(name="sync")
    async def sync(self) -> ActionResult:
        """Returns once everything so far is settled (steps opened, projection written)."""
        await workflow.wait_condition(lambda: self.settled >= self.r.seq)
        return ActionResult(self.r.seq, self.r.state, changed=False)

    def _seen(self, inp: ActionInput) -> ActionResult | None:
        if inp.action_id and inp.action_id in self.r.done_actions:
            return ActionResult(self.r.done_actions[inp.action_id], self.r.state, changed=False)
        return None

    async def _done(self, inp: ActionInput, changed: bool = True) -> ActionResult:
        seq = self.r.seq
        if inp.action_id:
            self.r.done_actions[inp.action_id] = seq
            while len(self.r.done_actions) > KEEP_ACTION_IDS:
                self.r.done_actions.pop(next(iter(self.r.done_actions)))
        await workflow.wait_condition(lambda: self.settled >= seq)
        return ActionResult(seq, self.r.state, changed)

    def _check(self, inp: ActionInput, check: Callable[[], object]) -> None:
        if self._seen(inp) is None:
            _guarded(check)

    @workflow.update(name="approve")
    async def approve(self, inp: ActionInput) -> ActionResult:
        if (seen := self._seen(inp)) is not None:
            return seen
        s = _guarded(lambda: d.check_approve(self.r, inp.actor, inp.step_key, inp.form, inp.etag))
        changed = d.approve(
            self.r, s, inp.actor, self._now(), inp.comment, inp.form, inp.client, inp.action_id
        )
        return await self._done(inp, changed)

    @approve.validator
    def _v_approve(self, inp: ActionInput) -> None:
        self._check(inp, lambda: d.check_approve(self.r, inp.actor, inp.step_key, inp.form, inp.etag))

    @workflow.update(name="reject")
    async def reject(self, inp: ActionInput) -> ActionResult:
        if (seen := self._seen(inp)) is not None:
            return seen
        s = _guarded(lambda: self._reason_step(inp))
        d.reject(self.r, s, inp.actor, self._now(), inp.comment, inp.client, inp.action_id)
        return await self._done(inp)

    @reject.validator
    def _v_reject(self, inp: ActionInput) -> None:
        self._check(inp, lambda: self._reason_step(inp))

    @workflow.update(name="return_for_changes")
    async def return_for_changes(self, inp: ActionInput) -> ActionResult:
        if (seen := self._seen(inp)) is not None:
            return seen
        s = _guarded(lambda: self._reason_step(inp))
        d.return_for_changes(self.r, s, inp.actor, self._now(), inp.comment, inp.client, inp.action_id)
        self.events.append(EventSpec("RETURNED", s.key, users=[inp.actor], comment=inp.comment))
        return await self._done(inp)

    @return_for_changes.validator
    def _v_return(self, inp: ActionInput) -> None:
        self._check(inp, lambda: self._reason_step(inp))

    def _reason_step(self, inp: ActionInput) -> d.StepRun:
        d.check_etag(self.r, inp.etag)
        s = d.acting_step(self.r, inp.actor, inp.step_key)
        if not inp.comment.strip():
            raise d.Refused(d.INVALID, "a reason (comment) is required")
        return s

    @workflow.update(name="delegate")
    async def delegate(self, inp: ActionInput) -> ActionResult:
        if (seen := self._seen(inp)) is not None:
            return seen
        s = _guarded(lambda: d.check_delegate(self.r, inp.actor, inp.step_key, inp.delegate_to, inp.etag))
        d.delegate(self.r, s, inp.actor, inp.delegate_to, self._now(), inp.comment, inp.client, inp.action_id)
        self.events.append(EventSpec("WAITING", s.key, users=[inp.delegate_to], reassigned=True))
        return await self._done(inp)

    @delegate.validator
    def _v_delegate(self, inp: ActionInput) -> None:
        self._check(inp, lambda: d.check_delegate(self.r, inp.actor, inp.step_key, inp.delegate_to, inp.etag))

    @workflow.update(name="resubmit")
    async def resubmit(self, inp: ActionInput) -> ActionResult:
        if (seen := self._seen(inp)) is not None:
            return seen
        _guarded(lambda: d.check_resubmit(self.r, inp.actor, inp.etag))
        facts = inp.facts or self.r.facts
        d.resubmit(
            self.r, facts, inp.actor, self._now(), inp.comment, inp.restart_all, inp.client, inp.action_id
        )
        return await self._done(inp)

    @resubmit.validator
    def _v_resubmit(self, inp: ActionInput) -> None:
        self._check(inp, lambda: d.check_resubmit(self.r, inp.actor, inp.etag))

    @workflow.update(name="cancel")
    async def cancel(self, inp: ActionInput) -> ActionResult:
        if (seen := self._seen(inp)) is not None:
            return seen
        _guarded(lambda: d.check_cancel(self.r, inp.actor, inp.is_admin, inp.etag))
        d.cancel(self.r, inp.actor, self._now(), inp.comment, inp.client, inp.action_id)
        return await self._done(inp)

    @cancel.validator
    def _v_cancel(self, inp: ActionInput) -> None:
        self._check(inp, lambda: d.check_cancel(self.r, inp.actor, inp.is_admin, inp.etag))


__all__ = [
    "CANCEL_OF_LOST",
    "ESCALATION",
    "INPUT_VERSION",
    "LOCAL_ACTIVITIES",
    "LOST_WORKFLOW_NAME",
    "NEXT_TIME",
    "OPEN_STEP",
    "OPEN_STEPS",
    "OPEN_TOGETHER",
    "QUERY",
    "RECORD",
    "STEADY_TIMER",
    "WORKFLOW_NAME",
    "ActionInput",
    "ActionResult",
    "ApprovalInput",
    "ApprovalWorkflow",
    "EscalationInput",
    "EventSpec",
    "FirstOpenings",
    "LostDealApprovalsWorkflow",
    "LostDealInput",
    "OpenInput",
    "OpenStepsInput",
    "Openings",
    "RecordInput",
    "TimeInput",
    "TimeResult",
    "Users",
    "iso",
    "lost_workflow_id",
    "workflow_id",
]
