"""Escalation chains on Temporal's time-skipping server: fires after T, stops on acknowledge."""

from __future__ import annotations

import grpc
import pytest
from temporalio.testing import WorkflowEnvironment

from kit import temporal
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from services.notify import activities, escalation
from tests.notify.conftest import REP_A1, SERVICE, TENANT, NotifyStack, auth, outbox_types, token
from tests.notify.test_delivery_tracking import finished
from tests.notify.test_send_inbox import reminder

pytestmark = pytest.mark.timeout(120)
SUP = token("sup-a", ["supervisor"], org="east/team-a")
DIRECTOR = token("director-east", ["director"], org="east")


def needs_ack(hours: int = 24) -> N.Notification:
    n = reminder("rep-a1")
    n.ack.ack_timeout.FromSeconds(hours * 3600)
    return n


async def _titles(stack: NotifyStack, tok: str) -> list[tuple[str, int, list[str]]]:
    page = await stack.stub.ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(tok))
    return [(i.notification_id, i.escalation_level, list(i.escalated_from_user_ids)) for i in page.items]


def _worker(stack: NotifyStack, env: WorkflowEnvironment):  # type: ignore[no-untyped-def]
    acts = activities.EscalationActivities(stack.rt.db, stack.rt.redis)
    return temporal.build_worker(
        env.client,
        stack.rt.settings.task_queue,
        workflows=[escalation.EscalationWorkflow],
        activities=acts.all(),
    )


async def test_unacknowledged_escalates_rep_supervisor_director_then_exhausts(
    notify: NotifyStack, temporal_skipping: WorkflowEnvironment
) -> None:
    sent = await notify.stub.SendNotification(
        M.SendNotificationRequest(notification=needs_ack()), metadata=auth(SERVICE)
    )
    nid = sent.notification.notification_id
    assert sent.notification.escalation.state == N.ESCALATION_STATE_AWAITING_ACK
    item = (await notify.stub.ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(REP_A1))).items[0]
    assert item.ack_required and item.ack_deadline.seconds > 0
    async with _worker(notify, temporal_skipping):
        assert (
            await escalation.start_pending(
                notify.rt.db, temporal_skipping.client, notify.rt.settings.task_queue
            )
            == 1
        )
        # Started once only: the row remembers it.
        assert (
            await escalation.start_pending(
                notify.rt.db, temporal_skipping.client, notify.rt.settings.task_queue
            )
            == 0
        )
        handle = temporal_skipping.client.get_workflow_handle(escalation.workflow_id(TENANT, nid))
        assert await finished(temporal_skipping, handle) == "exhausted"
    assert await _titles(notify, SUP) == [(nid, 1, ["rep-a1"])]
    assert await _titles(notify, DIRECTOR) == [(nid, 2, ["sup-a"])]
    # Reached by escalation, the director may open it; a rep of another team may not.
    got = await notify.stub.GetNotification(
        M.GetNotificationRequest(notification_id=nid), metadata=auth(DIRECTOR)
    )
    assert got.notification.escalation.state == N.ESCALATION_STATE_EXHAUSTED
    other_rep = auth(token("rep-b1", ["rep"], org="east/team-b"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.GetNotification(M.GetNotificationRequest(notification_id=nid), metadata=other_rep)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert got.notification.escalation.current_level == 2
    assert await outbox_types(notify) == [
        "notify.EscalationTriggered",
        "notify.EscalationTriggered",
        "notify.EscalationExhausted",
    ]


async def test_acknowledge_stops_the_chain(
    notify: NotifyStack, temporal_skipping: WorkflowEnvironment
) -> None:
    sent = await notify.stub.SendNotification(
        M.SendNotificationRequest(notification=needs_ack(2)), metadata=auth(SERVICE)
    )
    nid = sent.notification.notification_id
    async with _worker(notify, temporal_skipping):
        await escalation.start_pending(notify.rt.db, temporal_skipping.client, notify.rt.settings.task_queue)
        handle = temporal_skipping.client.get_workflow_handle(escalation.workflow_id(TENANT, nid))
        # One hour in (before T = 2 h), the rep acknowledges.
        await temporal_skipping.sleep(3600)
        assert await _titles(notify, SUP) == []
        # The service's Runtime has no Temporal client here: the DB row is the truth, the signal goes directly.
        acked = await notify.stub.AcknowledgeNotification(
            M.AcknowledgeNotificationRequest(notification_id=nid, channel=N.CHANNEL_IN_APP),
            metadata=auth(REP_A1),
        )
        assert acked.notification.escalation.state == N.ESCALATION_STATE_ACKNOWLEDGED
        assert acked.notification.escalation.acknowledged_by == "rep-a1"
        await handle.signal(escalation.EscalationWorkflow.acknowledge, "rep-a1")
        assert (await finished(temporal_skipping, handle)).startswith("acknowledged")
    assert await _titles(notify, SUP) == []
    assert await _titles(notify, DIRECTOR) == []
    item = (await notify.stub.ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(REP_A1))).items[0]
    assert not item.ack_required
    assert await outbox_types(notify) == ["notify.NotificationAcknowledged"]


async def test_a_lost_signal_cannot_escalate_an_acknowledged_notification(
    notify: NotifyStack, temporal_skipping: WorkflowEnvironment
) -> None:
    sent = await notify.stub.SendNotification(
        M.SendNotificationRequest(notification=needs_ack(1)), metadata=auth(SERVICE)
    )
    nid = sent.notification.notification_id
    await notify.stub.AcknowledgeNotification(
        M.AcknowledgeNotificationRequest(notification_id=nid), metadata=auth(REP_A1)
    )
    async with _worker(notify, temporal_skipping):
        async with notify.rt.db.session(TENANT) as s:
            await escalation.start(
                s, temporal_skipping.client, TENANT, await _row(notify, nid), notify.rt.settings.task_queue
            )
        handle = temporal_skipping.client.get_workflow_handle(escalation.workflow_id(TENANT, nid))
        await finished(temporal_skipping, handle)
    assert await _titles(notify, SUP) == []


async def test_only_recipients_acknowledge(notify: NotifyStack) -> None:
    import grpc

    sent = await notify.stub.SendNotification(
        M.SendNotificationRequest(notification=needs_ack()), metadata=auth(SERVICE)
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.AcknowledgeNotification(
            M.AcknowledgeNotificationRequest(notification_id=sent.notification.notification_id),
            metadata=auth(SUP),
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    plain = await notify.stub.SendNotification(
        M.SendNotificationRequest(notification=reminder("rep-a1", lead="L9")), metadata=auth(SERVICE)
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.AcknowledgeNotification(
            M.AcknowledgeNotificationRequest(notification_id=plain.notification.notification_id),
            metadata=auth(REP_A1),
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def _row(stack: NotifyStack, nid: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from services.notify.store import NotificationRow

    async with stack.rt.db.session(TENANT) as s:
        return await s.scalar(select(NotificationRow).where(NotificationRow.id == nid))


async def test_custom_policy_with_absolute_recipients_and_validation(
    notify: NotifyStack, temporal_skipping: WorkflowEnvironment
) -> None:
    import grpc

    from salesops.common.v1 import types_pb2
    from salesops.notify.v1 import escalation_pb2
    from tests.notify.conftest import ADMIN

    bad = escalation_pb2.EscalationPolicy(display_name="empty")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.CreateEscalationPolicy(
            M.CreateEscalationPolicyRequest(escalation_policy=bad), metadata=auth(ADMIN)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    policy = escalation_pb2.EscalationPolicy(display_name="Ops duty")
    policy.initial_ack_timeout.FromSeconds(600)
    duty = policy.steps.add(
        recipients=escalation_pb2.RecipientList(recipients=[N.Recipient(user_id="sup-b")])
    )
    duty.ack_timeout.FromSeconds(600)
    top = policy.steps.add(manager_role=types_pb2.ROLE_DIRECTOR)
    top.ack_timeout.FromSeconds(600)
    created = (
        await notify.stub.CreateEscalationPolicy(
            M.CreateEscalationPolicyRequest(escalation_policy=policy), metadata=auth(ADMIN)
        )
    ).escalation_policy
    listed = await notify.stub.ListEscalationPolicies(
        M.ListEscalationPoliciesRequest(), metadata=auth(SERVICE)
    )
    assert [p.escalation_policy_id for p in listed.escalation_policies] == [
        "default",
        created.escalation_policy_id,
    ]
    n = reminder("rep-a1")
    n.ack.escalation_policy_id = "nope"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.SendNotification(M.SendNotificationRequest(notification=n), metadata=auth(SERVICE))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    n.ack.escalation_policy_id = created.escalation_policy_id
    sent = await notify.stub.SendNotification(
        M.SendNotificationRequest(notification=n), metadata=auth(SERVICE)
    )
    nid = sent.notification.notification_id
    async with _worker(notify, temporal_skipping):
        await escalation.start_pending(notify.rt.db, temporal_skipping.client, notify.rt.settings.task_queue)
        handle = temporal_skipping.client.get_workflow_handle(escalation.workflow_id(TENANT, nid))
        assert await finished(temporal_skipping, handle) == "exhausted"
    sup_b = token("sup-b", ["supervisor"], org="east/team-b")
    assert await _titles(notify, sup_b) == [(nid, 1, ["rep-a1"])]  # the duty person, not rep-a1's supervisor
    assert await _titles(notify, SUP) == []
    assert await _titles(notify, DIRECTOR) == [(nid, 2, ["sup-b"])]
