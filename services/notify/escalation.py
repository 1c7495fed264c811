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
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity

from kit.db import Database
from kit.errors import FailedPrecondition, NotFound
from salesops.notify.v1 import escalation_pb2, notification_pb2
from services.notify import convert, directory, events, policies, sending
from services.notify.domain.recipients import escalation_targets
from services.notify.store import InboxItemRow, NotificationRow
from services.notify.workflows import ChainRequest, ChainStep, EscalationWorkflow, StepRequest

log = logging.getLogger("salesops.notify.escalation")
N = notification_pb2
AWAITING = N.ESCALATION_STATE_AWAITING_ACK


def workflow_id(tenant: str, notification_id: str) -> str:
    return f"escalation-{tenant}-{notification_id}"


class EscalationActivities:
    def __init__(self, db: Database, redis: aioredis.Redis) -> None:
        self.db = db
        self.sender = sending.Sender(db, redis)

    @activity.defn(name="notify.escalate")
    async def escalate(self, step: StepRequest) -> list[str]:
        """Notify the next level; returns its users ([] = nobody: still awaiting, or chain over)."""
        async with self.db.session(step.tenant) as s:
            row = await s.scalar(
                select(NotificationRow).where(NotificationRow.id == step.notification_id).with_for_update()
            )
            if row is None or row.escalation_state != AWAITING or row.escalation_level >= step.level:
                return []
            previous = list(
                await s.scalars(
                    select(InboxItemRow.user_id).where(
                        InboxItemRow.notification_id == row.id,
                        InboxItemRow.escalation_level == step.level - 1,
                    )
                )
            )
            already = set(
                await s.scalars(select(InboxItemRow.user_id).where(InboxItemRow.notification_id == row.id))
            )
            assert step.step is not None
            if step.step.recipients:
                targets = escalation_pb2.RecipientList.FromString(step.step.recipients).recipients
                candidates = await directory.resolve(s, targets)
            else:
                candidates = escalation_targets(await directory.members(s), previous, step.step.role)
            users = [u for u in candidates if u not in already]
            n = sending.stored(row)
            n.priority = step.step.priority or min(n.priority + 1, N.NOTIFICATION_PRIORITY_CRITICAL)  # type: ignore[assignment]
            deadline = datetime.now(UTC) + timedelta(seconds=step.step.ack_timeout_seconds)
            items, _ = await self.sender.fan_out(
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
            await s.commit()
        await self.sender.announce(step.tenant, sending.SendOutcome(n, False, items, []))
        return users

    @activity.defn(name="notify.exhaust_escalation")
    async def exhaust(self, ref: StepRequest) -> None:
        async with self.db.session(ref.tenant) as s:
            result = await s.execute(
                update(NotificationRow)
                .where(
                    NotificationRow.id == ref.notification_id, NotificationRow.escalation_state == AWAITING
                )
                .values(escalation_state=N.ESCALATION_STATE_EXHAUSTED)
                .execution_options(synchronize_session=False)
            )
            row = await s.scalar(select(NotificationRow).where(NotificationRow.id == ref.notification_id))
            if result.rowcount == 1 and row is not None:  # type: ignore[attr-defined]
                notified = await s.scalars(
                    select(InboxItemRow.user_id).where(InboxItemRow.notification_id == ref.notification_id)
                )
                at = datetime.now(UTC)
                await events.exhausted(s, sending.stored(row), row.escalation_level, list(notified), at)
            await s.commit()

    def all(self) -> list[object]:
        return [self.escalate, self.exhaust]


async def chain_request(session: AsyncSession, tenant: str, row: NotificationRow) -> ChainRequest:
    """The chain of `row`: its policy's steps, and the notification's own ack timeout if it gives one."""
    n = sending.stored(row)
    policy = await policies.load(session, tenant, n.ack.escalation_policy_id)
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
    from temporalio.client import Client
    from temporalio.exceptions import WorkflowAlreadyStartedError

    assert isinstance(client, Client)
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            EscalationWorkflow.run,
            await chain_request(session, tenant, row),
            id=workflow_id(tenant, row.id),
            task_queue=task_queue,
        )


async def start_pending(db: Database, client: object, task_queue: str) -> int:
    """Start chains for notifications awaiting acknowledgement whose workflow is not running yet."""
    async with db.system_session() as s:
        rows = list(
            await s.scalars(
                select(NotificationRow)
                .where(
                    NotificationRow.escalation_state == AWAITING,
                    NotificationRow.escalation_started.is_(False),
                )
                .limit(100)
            )
        )
        for row in rows:
            await start(s, client, row.tenant_id, row, task_queue)
            row.escalation_started = True
        await s.commit()
    return len(rows)


async def start_quietly(rt: object, tenant: str, notification_id: str) -> None:
    """Start the chain now if Temporal is reachable; otherwise the dispatcher starts it later."""
    from kit.runtime import Runtime

    assert isinstance(rt, Runtime)
    try:
        client = rt.temporal
        async with rt.db.session(tenant) as s:
            row = await s.scalar(select(NotificationRow).where(NotificationRow.id == notification_id))
            if row is None or row.escalation_started:
                return
            await start(s, client, tenant, row, rt.settings.task_queue)
            row.escalation_started = True
            await s.commit()
    except Exception:
        log.info("escalation of %s left to the dispatcher", notification_id, exc_info=True)


async def acknowledge(
    rt: object, tenant: str, notification_id: str, user_id: str, channel: int
) -> notification_pb2.Notification:
    from kit.runtime import Runtime

    assert isinstance(rt, Runtime)
    async with rt.db.session(tenant) as s:
        row = await s.scalar(select(NotificationRow).where(NotificationRow.id == notification_id))
        mine = await s.scalar(
            select(InboxItemRow.id).where(
                InboxItemRow.notification_id == notification_id, InboxItemRow.user_id == user_id
            )
        )
        if row is None or mine is None:
            raise NotFound("notification", notification_id)
        if row.escalation_state == N.ESCALATION_STATE_ACKNOWLEDGED:
            return sending.stored(row)
        if row.escalation_state != AWAITING:
            raise FailedPrecondition(f"notification {notification_id} does not await acknowledgement")
        now = datetime.now(UTC)
        result = await s.execute(
            update(NotificationRow)
            .where(NotificationRow.id == notification_id, NotificationRow.escalation_state == AWAITING)
            .values(
                escalation_state=N.ESCALATION_STATE_ACKNOWLEDGED,
                acknowledged_by=user_id,
                ack_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        await s.execute(
            update(InboxItemRow)
            .where(InboxItemRow.notification_id == notification_id)
            .values(ack_required=False)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            await events.acknowledged(s, sending.stored(row), user_id, row.escalation_level, channel, now)
        await s.commit()
        await s.refresh(row)
    with contextlib.suppress(Exception):  # the row is the truth; the workflow re-checks it before escalating
        handle = rt.temporal.get_workflow_handle(workflow_id(tenant, notification_id))
        await handle.signal(EscalationWorkflow.acknowledge, user_id)
    return sending.stored(row)
