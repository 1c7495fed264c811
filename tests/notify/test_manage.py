"""Cancelling, batch sends, template and subscriber management over gRPC."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from salesops.common.v1 import types_pb2
from salesops.notify.v1 import inbox_pb2, subscriber_pb2, template_pb2
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from tests.notify.conftest import ADMIN, REP_A1, SERVICE, NotifyStack, auth
from tests.notify.test_send_inbox import reminder, send


async def test_cancel_matching_resolves_items_and_tells_open_streams(notify: NotifyStack) -> None:
    first = await send(notify, reminder("rep-a1", lead="L1", dedupe="sla:L1"))
    await send(notify, reminder("rep-a1", lead="L2"))
    call = notify.stub.StreamInbox(M.StreamInboxRequest(), metadata=auth(REP_A1))
    await asyncio.wait_for(call.read(), 2)
    done = await notify.stub.CancelMatchingNotifications(
        M.CancelMatchingNotificationsRequest(
            subject=types_pb2.ResourceRef(service="leads", kind="lead", id="L1"), reason="contacted"
        ),
        metadata=auth(SERVICE),
    )
    assert list(done.notification_ids) == [first.notification.notification_id]
    event = await asyncio.wait_for(call.read(), 2)
    assert event.item_updated.state == inbox_pb2.INBOX_ITEM_STATE_RESOLVED
    call.cancel()
    got = await notify.stub.GetNotification(
        M.GetNotificationRequest(notification_id=first.notification.notification_id), metadata=auth(SERVICE)
    )
    assert (
        got.notification.state == N.NOTIFICATION_STATE_CANCELLED
        and got.notification.cancel_reason == "contacted"
    )
    count = await notify.stub.GetInboxUnreadCount(M.GetInboxUnreadCountRequest(), metadata=auth(REP_A1))
    assert count.unread_count.total == 1  # resolved items no longer count
    # Idempotent, and by dedupe key too.
    again = await notify.stub.CancelNotification(
        M.CancelNotificationRequest(notification_id=first.notification.notification_id),
        metadata=auth(SERVICE),
    )
    assert again.notification.cancel_reason == "contacted"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.CancelMatchingNotifications(
            M.CancelMatchingNotificationsRequest(), metadata=auth(SERVICE)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_batch_send_reports_each_item(notify: NotifyStack) -> None:
    bad = N.Notification(category=N.NOTIFICATION_CATEGORY_SLA_REMINDER)
    out = await notify.stub.BatchSendNotifications(
        M.BatchSendNotificationsRequest(
            requests=[
                M.SendNotificationRequest(notification=reminder("rep-a1", lead="B1")),
                M.SendNotificationRequest(notification=bad),
                M.SendNotificationRequest(notification=reminder("rep-a1", lead="B2")),
            ]
        ),
        metadata=auth(SERVICE),
    )
    assert [bool(r.notification.notification_id) for r in out.results] == [True, False, True]
    assert out.results[1].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    listed = await notify.stub.ListNotifications(
        M.ListNotificationsRequest(page_size=1), metadata=auth(ADMIN)
    )
    assert len(listed.notifications) == 1 and listed.next_page_token


async def test_tenant_template_overrides_built_in_and_updates_are_validated(notify: NotifyStack) -> None:
    draft = template_pb2.Template(
        template_key="sla_reminder",
        locale="zh-CN",
        category=N.NOTIFICATION_CATEGORY_SLA_REMINDER,
        title="【{{ lead_name }}】马上到期",
        body="截止 {{ due_time|time }}",
        variables=[
            template_pb2.TemplateVariable(
                name="lead_name", type=template_pb2.VARIABLE_TYPE_STRING, required=True
            ),
            template_pb2.TemplateVariable(name="lead_id", type=template_pb2.VARIABLE_TYPE_STRING),
        ],
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.CreateTemplate(M.CreateTemplateRequest(template=draft), metadata=auth(SERVICE))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    broken = template_pb2.Template()
    broken.CopyFrom(draft)
    broken.body = "{{ nope }}"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.CreateTemplate(M.CreateTemplateRequest(template=broken), metadata=auth(ADMIN))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "nope" in (err.value.details() or "")
    created = (
        await notify.stub.CreateTemplate(M.CreateTemplateRequest(template=draft), metadata=auth(ADMIN))
    ).template
    await send(notify, reminder("rep-a1", lead="T1"))
    page = await notify.stub.ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(REP_A1))
    assert page.items[0].title == "【ACME T1】马上到期"
    preview = await notify.stub.PreviewTemplate(
        M.PreviewTemplateRequest(template_id=created.template_id), metadata=auth(ADMIN)
    )
    assert preview.rendered[0].title == "【<lead_name>】马上到期"
    update = template_pb2.Template(
        template_id=created.template_id, title="{{ lead_name }} 快到期", etag=created.etag
    )
    from google.protobuf.field_mask_pb2 import FieldMask

    updated = await notify.stub.UpdateTemplate(
        M.UpdateTemplateRequest(template=update, update_mask=FieldMask(paths=["title"])), metadata=auth(ADMIN)
    )
    assert updated.template.revision == 2 and updated.template.body == draft.body
    with pytest.raises(grpc.aio.AioRpcError) as err:  # stale etag
        await notify.stub.UpdateTemplate(
            M.UpdateTemplateRequest(template=update, update_mask=FieldMask(paths=["title"])),
            metadata=auth(ADMIN),
        )
    assert err.value.code() == grpc.StatusCode.ABORTED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.DeleteTemplate(
            M.DeleteTemplateRequest(template_id="builtin.sla_reminder.zh-CN"), metadata=auth(ADMIN)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await notify.stub.DeleteTemplate(
        M.DeleteTemplateRequest(template_id=created.template_id), metadata=auth(ADMIN)
    )
    await send(notify, reminder("rep-a1", lead="T2"))
    page = await notify.stub.ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(REP_A1))
    assert page.items[0].title.startswith("线索即将超时")  # the built-in is back


async def test_subscriber_directory_management(notify: NotifyStack) -> None:
    listed = await notify.stub.ListSubscribers(
        M.ListSubscribersRequest(org_unit_path="east", include_descendants=True, role=types_pb2.ROLE_REP),
        metadata=auth(ADMIN),
    )
    assert [s.user_id for s in listed.subscribers] == ["rep-a1", "rep-a2", "rep-b1"]
    got = (
        await notify.stub.GetSubscriber(M.GetSubscriberRequest(user_id="rep-a2"), metadata=auth(REP_A1))
    ).subscriber
    assert "****" in got.phone and got.email.startswith("***@")  # masked for other users
    moved = subscriber_pb2.Subscriber()
    moved.CopyFrom(got)
    moved.phone, moved.email = "+8613800000099", "a2@example.com"
    moved.org_unit_path, moved.active = "east/team-b", False
    await notify.stub.UpdateSubscriber(M.UpdateSubscriberRequest(subscriber=moved), metadata=auth(ADMIN))
    resolved = await notify.stub.ResolveRecipients(
        M.ResolveRecipientsRequest(
            recipients=[
                N.Recipient(
                    org_role=N.OrgRoleTarget(
                        role=types_pb2.ROLE_REP, org_unit_path="east", include_descendants=True
                    )
                )
            ]
        ),
        metadata=auth(SERVICE),
    )
    assert list(resolved.user_ids) == ["rep-a1", "rep-b1"]  # inactive rep-a2 is skipped
    await notify.stub.DeleteSubscriber(M.DeleteSubscriberRequest(user_id="rep-b1"), metadata=auth(ADMIN))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.GetSubscriber(M.GetSubscriberRequest(user_id="rep-b1"), metadata=auth(ADMIN))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_devices_are_the_callers_own_and_tokens_write_only(notify: NotifyStack) -> None:
    from salesops.notify.v1 import channel_config_pb2
    from tests.notify.conftest import REP_A2

    device = subscriber_pb2.Device(
        device_id="dev-1",
        platform=subscriber_pb2.DEVICE_PLATFORM_ANDROID,
        push_provider=channel_config_pb2.PUSH_PROVIDER_HUAWEI,
        push_token=channel_config_pb2.Secret(value="token-0123456789"),
        model="Mate 60",
    )
    saved = (
        await notify.stub.RegisterDevice(M.RegisterDeviceRequest(device=device), metadata=auth(REP_A1))
    ).device
    assert saved.user_id == "rep-a1" and saved.push_token.set and not saved.push_token.value
    again = await notify.stub.RegisterDevice(M.RegisterDeviceRequest(device=device), metadata=auth(REP_A1))
    assert again.device.device_id == "dev-1"  # upsert
    mine = await notify.stub.ListDevices(M.ListDevicesRequest(), metadata=auth(REP_A1))
    assert [d.device_id for d in mine.devices] == ["dev-1"]
    assert not (await notify.stub.ListDevices(M.ListDevicesRequest(), metadata=auth(REP_A2))).devices
    await notify.stub.UnregisterDevice(M.UnregisterDeviceRequest(device_id="dev-1"), metadata=auth(REP_A2))
    assert len((await notify.stub.ListDevices(M.ListDevicesRequest(), metadata=auth(REP_A1))).devices) == 1
    await notify.stub.UnregisterDevice(M.UnregisterDeviceRequest(device_id="dev-1"), metadata=auth(REP_A1))
    assert not (await notify.stub.ListDevices(M.ListDevicesRequest(), metadata=auth(REP_A1))).devices
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.RegisterDevice(
            M.RegisterDeviceRequest(device=subscriber_pb2.Device(device_id="x")), metadata=auth(REP_A1)
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
