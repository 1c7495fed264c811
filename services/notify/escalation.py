"""Escalation chains as a durable Temporal workflow: rep -> supervisor -> director.

`EscalationWorkflow` (id `escalation-<tenant>-<notification>`) waits for an
acknowledge signal with a durable timer per level; on timeout the next level
(the managers of the previous level's users) gets inbox items, until the chain
is exhausted. The database row is the truth for "acknowledged": the escalate
activity re-checks it, so a lost signal cannot cause a wrong escalation.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from kit.db import Database
from kit.errors import FailedPrecondition, NotFound
from kit.resources import Transactions, UnitOfWork
from kit.runtime import Runtime
from salesops.notify.v1 import escalation_pb2, notification_pb2
from services.notify import convert, directory, escalation_policies, events, sending, store
from services.notify.domain.recipients import escalation_targets
from services.notify.repositories import on_session
from services.notify.repositories.inbox import InboxRepository
from services.notify.repositories.notifications import NotificationRepository, awaiting_unstarted_everywhere
from services.notify.store import NotificationRow
from services.notify.workflows import ChainRequest, ChainStep, EscalationWorkflow, StepRequest

log = logging.getLogger("salesops.notify.escalation")
N = notification_pb2
AWAITING = N.ESCALATION_STATE_AWAITING_ACK


def workflow_id(tenant: str, notification_id: str) -> str:
    return f"escalation-{tenant}-{notification_id}"


async def chain_request(session: AsyncSession, tenant: str, row: NotificationRow) -> ChainRequest:
    """The chain of `row`: its policy's steps, and the notification's own ack timeout if it gives one."""
    n = convert.notification(row)
    policy = await escalation_policies.get(on_session(session), n.ack.escalation_policy_id)
    initial = n.ack.ack_timeout if n.ack.HasField("ack_timeout") else policy.initial_ack_timeout
    steps = [
        ChainStep(
            ack_timeout_seconds=step.ack_timeout.ToTimedelta().total_seconds(),
            role=convert.role_name(step.manager_role) if step.WhichOneof("target") == "manager_role" else "",
            recipients=step.recipients.SerializeToString()
            if step.WhichOneof("target") == "recipients"
            else b"",
            channels=list(step.channels),
            priority=int(step.priority),
        )
        for step in policy.steps
    ]
    return ChainRequest(tenant, row.id, initial.ToTimedelta().total_seconds(), steps)


async def start(
    session: AsyncSession, client: object, tenant: str, row: NotificationRow, task_queue: str
) -> None:
    assert isinstance(client, Client)
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            EscalationWorkflow.run,
            await chain_request(session, tenant, row),
            id=workflow_id(tenant, row.id),
            task_queue=task_queue,
        )


def _start_one(
    client: Client, notification_id: str, task_queue: str
) -> Callable[[UnitOfWork], Awaitable[None]]:
    async def work(uow: UnitOfWork) -> None:
        row = await NotificationRepository(uow).find(notification_id)
        if row is None or row.escalation_started or row.escalation_state != AWAITING:
            return
        await start(uow.session, client, uow.tenant, row, task_queue)
        row.escalation_started = True

    return work


async def start_pending(db: Database, client: object, task_queue: str) -> int:
    """Start chains for notifications awaiting acknowledgement whose workflow is not running yet."""
    assert isinstance(client, Client)
    tx = Transactions(db, source="notify", outbox=store.outbox)
    pending = await awaiting_unstarted_everywhere(db)
    for tenant, notification_id in pending:
        await tx.run(tenant, _start_one(client, notification_id, task_queue))
    return len(pending)


async def start_quietly(rt: Runtime, tenant: str, notification_id: str) -> None:
    """Start the chain now if Temporal is reachable; otherwise the dispatcher starts it later."""
    try:
        tx = Transactions(rt.db, source="notify", outbox=store.outbox)
        await tx.run(tenant, _start_one(rt.temporal, notification_id, rt.settings.task_queue))
    except Exception:
        log.info("escalation of %s left to the dispatcher", notification_id, exc_info=True)


async def acknowledge(
    uow: UnitOfWork, notification_id: str, user_id: str, channel: int
) -> notification_pb2.Notification:
    """Any user notified so far may acknowledge; repeating it is harmless. The caller tells the
    running chain after the commit (`signal_acknowledged`): the row is the truth it re-checks."""
    notifications = NotificationRepository(uow)
    row = await notifications.find(notification_id)
    if row is None or not await notifications.addressed_to(notification_id, user_id):
        raise NotFound("notification", notification_id)
    if row.escalation_state == N.ESCALATION_STATE_ACKNOWLEDGED:
        return convert.notification(row)
    if row.escalation_state != AWAITING:
        raise FailedPrecondition(f"notification {notification_id} does not await acknowledgement")
    now = datetime.now(UTC)
    won = await notifications.acknowledge_if_awaiting(notification_id, user_id, now)
    await InboxRepository(uow).ack_no_longer_required(notification_id)
    if won:
        await events.acknowledged(
            uow.session, convert.notification(row), user_id, row.escalation_level, channel, now
        )
    await uow.session.refresh(row)
    return convert.notification(row)


async def signal_acknowledged(rt: Runtime, tenant: str, notification_id: str, user_id: str) -> None:
    with contextlib.suppress(Exception):  # the row is the truth; the workflow re-checks it before escalating
        handle = rt.temporal.get_workflow_handle(workflow_id(tenant, notification_id))
        await handle.signal(EscalationWorkflow.acknowledge, user_id)


async def escalate(
    uow: UnitOfWork, sender: sending.Sender, step: StepRequest
) -> tuple[list[str], sending.SendOutcome | None]:
    """Notify the next level: its users ([] = nobody: still awaiting, or chain over) and what to announce."""
    notifications, inbox = NotificationRepository(uow), InboxRepository(uow)
    row = await notifications.locked(step.notification_id)
    if row is None or row.escalation_state != AWAITING or row.escalation_level >= step.level:
        return [], None
    previous = await inbox.users_of(row.id, step.level - 1)
    already = set(await inbox.users_of(row.id))
    assert step.step is not None
    s = uow.session
    if step.step.recipients:
        targets = escalation_pb2.RecipientList.FromString(step.step.recipients).recipients
        candidates = await directory.resolve(s, targets)
    else:
        candidates = escalation_targets(await directory.members(s), previous, step.step.role)
    users = [u for u in candidates if u not in already]
    n = convert.notification(row)
    n.priority = step.step.priority or min(n.priority + 1, N.NOTIFICATION_PRIORITY_CRITICAL)  # type: ignore[assignment]
    deadline = datetime.now(UTC) + timedelta(seconds=step.step.ack_timeout_seconds)
    items, _ = await sender.fan_out(
        s,
        n,
        users,
        level=step.level,
        ack_deadline=deadline,
        escalated_from=previous,
        channels=step.step.channels,
    )
    row.escalation_level = step.level
    await events.escalated(s, n, step.level, previous, users, deadline, datetime.now(UTC))
    return users, sending.SendOutcome(n, False, items, [])


async def exhaust(uow: UnitOfWork, notification_id: str) -> None:
    """The chain ran out: EXHAUSTED, announced once."""
    notifications = NotificationRepository(uow)
    if not await notifications.exhaust_if_awaiting(notification_id):
        return
    row = await notifications.find(notification_id)
    if row is not None:
        notified = await InboxRepository(uow).users_of(notification_id)
        await events.exhausted(
            uow.session, convert.notification(row), row.escalation_level, notified, datetime.now(UTC)
        )
