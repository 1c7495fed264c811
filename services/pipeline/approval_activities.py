"""Temporal activities of the approval workflow: all I/O (the org, the calendar, the projection).

Approvers are resolved from the member profiles at the moment a step opens (role,
the deal owner's supervisor, named users), standing delegations in force then
applied; deadlines are computed in the tenant's zone and business calendar. The
record activity writes the list projection, the audit rows and the events in one
transaction, guarded by the workflow's sequence number (a retry writes nothing twice).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from kit.db import Database
from kit.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SalesopsError,
    Unavailable,
)
from kit.events import EventEnvelope, service_stream
from kit.events.consumer import Handler
from kit.events.envelope import unpack_payload
from kit.resources import Transactions, UnitOfWork
from kit.runtime import ConsumerSpec, Runtime
from salesops.pipeline.v1 import events_pb2
from services.pipeline import approval_entry, approvals, events
from services.pipeline.approval_codec import decode, encode
from services.pipeline.approval_openings import add_limit, calendar, openings
from services.pipeline.approval_workflows import (
    CANCEL_OF_LOST,
    ESCALATION,
    INPUT_VERSION,
    LOST_WORKFLOW_NAME,
    NEXT_TIME,
    OPEN_STEP,
    OPEN_STEPS,
    QUERY,
    RECORD,
    WORKFLOW_NAME,
    ActionInput,
    ActionResult,
    ApprovalInput,
    EscalationInput,
    FirstOpenings,
    LostDealInput,
    Openings,
    OpenInput,
    OpenStepsInput,
    RecordInput,
    TimeInput,
    TimeResult,
    Users,
    iso,
    lost_workflow_id,
    workflow_id,
)
from services.pipeline.consumers import on_session
from services.pipeline.domain import approvals as d
from services.pipeline.repositories.approvals import (
    Approvals,
    approvers_with_role,
    managers_of,
)
from services.pipeline.store import transactions


class ApprovalActivities:
    def __init__(self, db: Database) -> None:
        self.tx = transactions(db)

    # The inputs carrying a run or step definitions arrive as plain JSON and are decoded by
    # approval_codec (Temporal's own decode resolved every nested dataclass's type hints per call).
    @activity.defn(name=OPEN_STEP)
    async def open_step(self, raw: dict[str, Any]) -> d.Opening:
        inp = decode(OpenInput, raw)
        async with self.tx.read(inp.tenant) as uow:
            (opening,) = await openings(
                uow, [inp.step], inp.deal_owner, inp.requester, datetime.fromisoformat(inp.at)
            )
        return opening

    @activity.defn(name=OPEN_STEPS)
    async def open_steps(self, raw: dict[str, Any]) -> Openings:
        inp = decode(OpenStepsInput, raw)
        async with self.tx.read(inp.tenant) as uow:
            got = await openings(
                uow, inp.steps, inp.deal_owner, inp.requester, datetime.fromisoformat(inp.at)
            )
        return Openings(got)

    @activity.defn(name=NEXT_TIME)
    async def next_time(self, raw: dict[str, Any]) -> TimeResult:
        inp = decode(TimeInput, raw)
        async with self.tx.read(inp.tenant) as uow:
            cal = await calendar(uow)
        return TimeResult(iso(add_limit(cal, datetime.fromisoformat(inp.start), inp.limit)))

    @activity.defn(name=ESCALATION)
    async def escalation_targets(self, raw: dict[str, Any]) -> Users:
        inp = decode(EscalationInput, raw)
        step = inp.step
        if step.escalate_to == "USERS":
            return Users(list(step.escalate_user_ids))
        async with self.tx.read(inp.tenant) as uow:
            repo = Approvals(uow)
            if step.escalate_to == "APPROVER_ROLE":
                return Users(await approvers_with_role(repo, step.escalate_role))
            managers = await managers_of(repo, inp.assignees)
        return Users(list(dict.fromkeys(managers[u] for u in inp.assignees if u in managers)))

    @activity.defn(name=RECORD)
    async def record(self, raw: dict[str, Any]) -> None:
        inp = decode(RecordInput, raw)
        tries = 0

        async def work(uow: UnitOfWork) -> None:
            nonlocal tries
            tries += 1  # a rerun (the fresh insert met the row: a retry after it committed) reads first
            await approvals.project(uow, inp.run, inp.events, fresh=inp.fresh and tries == 1)

        await self.tx.run(inp.run.tenant, work)

    @activity.defn(name=CANCEL_OF_LOST)
    async def cancel_of_lost_deal(self, inp: LostDealInput) -> None:
        await cancel_for_lost_deal(activity.client(), self.tx, inp)

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.open_step,
            self.open_steps,
            self.next_time,
            self.escalation_targets,
            self.record,
            self.cancel_of_lost_deal,
        ]


def build(rt: Runtime) -> list[Callable[..., Any]]:
    return ApprovalActivities(rt.db).all()


# ---------------------------------------------------------------- the use cases' side of the workflow

CODES: dict[str, type[SalesopsError]] = {
    d.NOT_ASSIGNEE: PermissionDenied,
    d.NOT_ALLOWED: PermissionDenied,
    d.WRONG_STATE: FailedPrecondition,
    d.STALE: Aborted,
}


def _refusal(code: str, message: str) -> SalesopsError:
    if code == d.INVALID:
        return InvalidArgument(message, reason=code)
    return CODES.get(code, FailedPrecondition)(message, reason=code)


async def start(
    client: Client,
    task_queue: str,
    run: d.Run,
    caller: str,
    *,
    settle: bool = True,
    first: FirstOpenings | None = None,
) -> None:
    """Start the approval's workflow (a repeat of the same id finds the running one) and, with `settle`,
    wait until its first steps are open and projected (the caller reads the projection).

    Settling is the `sync` Update sent with the start (update-with-start): one call, and the first
    workflow task carries the update, instead of a start, a task, then a second task for the update."""
    wid = workflow_id(run.tenant, run.approval_id)
    # The same JSON Temporal would write of the dataclass, without its asdict (a deep copy of the run).
    arg = encode(ApprovalInput(run, caller, first=first, version=INPUT_VERSION))
    if settle:
        op: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            WORKFLOW_NAME,
            arg,
            id=wid,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,  # a repeat settles the running one
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        try:
            # The result is not used: left as JSON (decoding it as ActionResult resolved its type hints).
            await client.execute_update_with_start_workflow("sync", start_workflow_operation=op)
            return
        except WorkflowAlreadyStartedError:
            return  # this id's workflow has ended: the caller reads what it left
        except (RPCError, WorkflowUpdateFailedError) as exc:
            if not (isinstance(exc, RPCError) and exc.status == RPCStatusCode.UNIMPLEMENTED):
                await op.workflow_handle()  # the start's own failure, if it failed; the update's is not
                return
        # A server without update-with-start: a start, then the update.
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            WORKFLOW_NAME,
            arg,
            id=wid,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    if settle:
        await settled(client, run.tenant, run.approval_id)


async def settled(client: Client, tenant: str, approval_id: str) -> None:
    """Wait until the workflow has settled everything so far (steps opened, projection written)."""
    handle = client.get_workflow_handle(workflow_id(tenant, approval_id))
    with contextlib.suppress(RPCError, WorkflowUpdateFailedError):
        await handle.execute_update("sync")


async def state(client: Client, tenant: str, approval_id: str) -> d.Run:
    try:
        run: d.Run = await client.get_workflow_handle(workflow_id(tenant, approval_id)).query(
            QUERY, result_type=d.Run
        )
        return run
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise NotFound("pipeline.Approval", approval_id) from None
        raise Unavailable(f"the approval's workflow did not answer: {exc.message}") from None
    except WorkflowQueryFailedError as exc:
        # The worker failed the query's task (e.g. its deadlock detector on a starved CPU): the next
        # try can answer, so the caller gets UNAVAILABLE, not INTERNAL.
        raise Unavailable(f"the approval's workflow did not answer: {exc.message}") from None


async def act(client: Client, tenant: str, approval_id: str, update: str, inp: ActionInput) -> ActionResult:
    """Run one action as an Update; a validator's refusal becomes the typed error, a repeat its first result."""
    handle = client.get_workflow_handle(workflow_id(tenant, approval_id))
    try:
        raw = await handle.execute_update(update, encode(inp), id=inp.action_id or None)
        return decode(ActionResult, raw)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            raise _refusal(cause.type or "", cause.message) from None
        raise
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise Unavailable(f"the approval's workflow did not answer: {exc.message}") from None
    # The workflow has finished: a repeated action id answers its first result, anything else is refused.
    run = await state(client, tenant, approval_id)
    if inp.action_id and inp.action_id in run.done_actions:
        return ActionResult(run.done_actions[inp.action_id], run.state, changed=False)
    raise FailedPrecondition(
        f"the approval is {run.state}; nothing waits on a decision", reason=d.WRONG_STATE
    )


CLOSED_COMMENTS = {"LOST": "the deal was lost", "WON": "the deal was won"}


async def cancel_for_lost_deal(client: Client, tx: Transactions, inp: LostDealInput) -> None:
    """A closed (lost or won) deal's running approvals end CANCELLED (by the system, as an admin would):
    nothing is left to decide, the approvers' queues drop them, each one's audit says why. Each cancel waits
    until settled, so this runs outside any open transaction (the closed-deal workflow's activity). An
    approval claimed but not yet projected (a start in flight as the deal closed) is cancelled too; while
    its workflow is not there yet the activity fails and Temporal retries it (the done cancels repeat
    nothing: the action id is the Update id)."""
    async with tx.read(inp.tenant) as uow:
        repo = Approvals(uow)
        running = await repo.running_of_deal(inp.deal_id)
        claimed = await repo.unprojected_claims_of_deal(inp.deal_id)
    outcome = inp.outcome if inp.outcome in CLOSED_COMMENTS else "LOST"
    cancel = ActionInput(
        d.SYSTEM,
        f"deal-{outcome.lower()}:{inp.event_id}",  # the Update id: a retry or redelivery returns the first result
        comment=CLOSED_COMMENTS[outcome],
        client="pipeline",
        is_admin=True,
    )
    for approval_id in running:
        with contextlib.suppress(FailedPrecondition, NotFound):  # already ended, or never started
            await act(client, inp.tenant, approval_id, "cancel", cancel)
    now = datetime.now(UTC)
    for approval_id, claimed_at in claimed:
        try:
            await act(client, inp.tenant, approval_id, "cancel", cancel)
        except FailedPrecondition:
            continue  # it ended already
        except NotFound:
            at = claimed_at if claimed_at.tzinfo else claimed_at.replace(tzinfo=UTC)
            if now - at <= approvals.UNSTARTED_AFTER:
                raise ApplicationError(
                    f"approval {approval_id} is starting; cancel it once it runs"
                ) from None
            # older: it never started (approvals.claim frees such a claim), nothing runs to cancel


async def start_lost_deal_cancel(client: Client, task_queue: str, envelope: EventEnvelope) -> None:
    """Start the closed deal's cancel workflow (one per DealLost / DealWon event: a redelivery starts nothing)."""
    if envelope.type == events.DEAL_WON:
        deal_id, outcome = unpack_payload(envelope, events_pb2.DealWon).deal.deal_id, "WON"
    else:
        deal_id, outcome = unpack_payload(envelope, events_pb2.DealLost).deal.deal_id, "LOST"
    inp = LostDealInput(envelope.tenant, deal_id, envelope.id, outcome)
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            LOST_WORKFLOW_NAME,
            inp,
            id=lost_workflow_id(envelope.tenant, envelope.id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )


async def _has_open_approvals(uow: UnitOfWork, envelope: EventEnvelope) -> bool:
    if envelope.type == events.DEAL_WON:
        deal_id = unpack_payload(envelope, events_pb2.DealWon).deal.deal_id
    else:
        deal_id = unpack_payload(envelope, events_pb2.DealLost).deal.deal_id
    repo = Approvals(uow)
    return bool(await repo.running_of_deal(deal_id) or await repo.unprojected_claims_of_deal(deal_id))


def entry_handler(rt: Runtime) -> Handler:
    """A forward stage entry starts the stage's on-entry approval flows (after the move committed);
    a closed (lost or won) deal cancels its running approvals."""

    async def handle(envelope: EventEnvelope, session: AsyncSession) -> None:
        tx = transactions(rt.db)
        if envelope.type in (events.DEAL_LOST, events.DEAL_WON):
            # Most closed deals have no approval left: start the cancel workflow only when one runs or
            # is starting (a claim after this close is refused, so none is missed by looking now).
            if await _has_open_approvals(on_session(session, envelope.tenant), envelope):
                await start_lost_deal_cancel(rt.temporal, rt.settings.task_queue, envelope)
            return
        changed = unpack_payload(envelope, events_pb2.DealStageChanged)
        async with tx.read(envelope.tenant) as uow:
            runs = await approval_entry.on_entry_runs(uow, changed, datetime.now(UTC))
        # The claims go in the consumer's own transaction (committed with the processed-event row; on
        # SQLite a second writer would wait on it), and the workflows are not waited on: their first
        # projection writes would wait for that same commit.
        uow = on_session(session, envelope.tenant)
        for run in runs:
            try:
                await approvals.claim(uow, run, datetime.now(UTC))
            except AlreadyExists:
                continue  # another approval of this flow runs for the deal
            except FailedPrecondition:
                continue  # the deal closed since: nothing to start
            await start(rt.temporal, rt.settings.task_queue, run, "pipeline:stage-entry", settle=False)

    return handle


ENTRY_CONSUMER = ConsumerSpec(
    group="pipeline-approval-entry",
    streams=(service_stream(events.SOURCE),),
    handler=entry_handler,
    types=(events.DEAL_STAGE_CHANGED, events.DEAL_LOST, events.DEAL_WON),
    role="worker",
    options={"min_idle": 30.0},
)


__all__ = [
    "ENTRY_CONSUMER",
    "ApprovalActivities",
    "act",
    "add_limit",
    "build",
    "entry_handler",
    "settled",
    "start",
    "state",
]
