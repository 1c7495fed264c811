"""OWASP API1 (object-level visibility) in notify: one presenter per resource decides what a
viewer sees, on every path.

A colleague's subscriber entry used to show their WeCom and DingTalk ids unmasked (only
phone and e-mail were masked, and only in GetSubscriber); anyone outside the caller's org
unit was readable at all.
"""

from __future__ import annotations

import grpc
import pytest

from salesops.notify.v1 import notify_service_pb2 as M
from services.notify import live
from tests.notify import conftest as notify_conftest
from tests.notify.conftest import ADMIN, REP_A1, SUP_A, NotifyStack, auth

notify = notify_conftest.notify  # the fixture


async def test_colleagues_see_a_masked_entry_with_no_addresses(notify: NotifyStack) -> None:
    for viewer in (REP_A1, SUP_A):
        got = (
            await notify.stub.GetSubscriber(M.GetSubscriberRequest(user_id="rep-a2"), metadata=auth(viewer))
        ).subscriber
        assert got.display_name == "Rep A2"
        assert "****" in got.phone and got.email.startswith("***@")
        assert got.wecom_user_id in ("", "***") and "rep-a2" not in got.wecom_user_id
    full = (
        await notify.stub.GetSubscriber(M.GetSubscriberRequest(user_id="rep-a2"), metadata=auth(ADMIN))
    ).subscriber
    assert full.wecom_user_id == "wx-rep-a2" and "****" not in full.phone


async def test_a_supervisor_sees_only_their_own_subtree(notify: NotifyStack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.GetSubscriber(M.GetSubscriberRequest(user_id="rep-b1"), metadata=auth(SUP_A))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_notifications_not_addressed_to_the_caller_do_not_exist_for_them(notify: NotifyStack) -> None:
    from tests.notify.conftest import REP_A2
    from tests.notify.test_send_inbox import reminder, send

    sent = await send(notify, reminder("rep-a1", lead="V1"))
    nid = sent.notification.notification_id
    for call, request in (
        ("GetNotification", M.GetNotificationRequest(notification_id=nid)),
        ("AcknowledgeNotification", M.AcknowledgeNotificationRequest(notification_id=nid)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await getattr(notify.stub, call)(request, metadata=auth(REP_A2))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND, call


def test_live_channels_of_lookalike_tenants_and_users_are_distinct() -> None:
    # Tenant "demo" with user "x:rep" and tenant "demo:x" with user "rep" once shared a channel,
    # so one's stream received the other's inbox events.
    assert live.channel_name("demo", "x:rep") != live.channel_name("demo:x", "rep")
    assert live.channel_name("demo", "rep") == live.channel_name("demo", "rep")
