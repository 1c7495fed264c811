"""Tenant NotifySettings: defaults made explicit, and overrides that change how sends behave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.type import timeofday_pb2

from salesops.notify.v1 import delivery_pb2 as D
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from salesops.notify.v1 import preference_pb2, settings_pb2
from tests.notify.conftest import ADMIN, REP_A1, SERVICE, NotifyStack, auth
from tests.notify.fakes import http_provider
from tests.notify.test_delivery_tracking import _deliveries, _webhook_config
from tests.notify.test_send_inbox import reminder, send


async def test_settings_defaults_and_overrides_drive_sends(notify: NotifyStack) -> None:
    got = (await notify.stub.GetNotifySettings(M.GetNotifySettingsRequest(), metadata=auth(SERVICE))).settings
    assert got.default_locale == "zh-CN" and got.default_time_zone == "Asia/Shanghai" and got.etag == "0"
    assert len(got.category_policies) == 13
    reminder_policy = next(
        p for p in got.category_policies if p.category == N.NOTIFICATION_CATEGORY_SLA_REMINDER
    )
    assert reminder_policy.critical

    now = datetime.now(UTC)
    begin, finish = now - timedelta(minutes=5), now + timedelta(hours=3)
    change = settings_pb2.NotifySettings(
        default_locale="en",
        default_time_zone="UTC",
        default_quiet_hours=preference_pb2.QuietHours(
            enabled=True,
            start_time=timeofday_pb2.TimeOfDay(hours=begin.hour, minutes=begin.minute),
            end_time=timeofday_pb2.TimeOfDay(hours=finish.hour, minutes=finish.minute),
        ),
        category_policies=[
            settings_pb2.CategoryPolicy(
                category=N.NOTIFICATION_CATEGORY_SLA_REMINDER,
                critical=False,
                default_channels=[N.CHANNEL_WEBHOOK],
            )
        ],
        etag="0",
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.UpdateNotifySettings(
            M.UpdateNotifySettingsRequest(settings=change), metadata=auth(SERVICE)
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    updated = await notify.stub.UpdateNotifySettings(
        M.UpdateNotifySettingsRequest(settings=change), metadata=auth(ADMIN)
    )
    assert updated.settings.etag == "1" and updated.settings.default_locale == "en"
    with pytest.raises(grpc.aio.AioRpcError) as err:  # stale etag
        await notify.stub.UpdateNotifySettings(
            M.UpdateNotifySettingsRequest(settings=change), metadata=auth(ADMIN)
        )
    assert err.value.code() == grpc.StatusCode.ABORTED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.UpdateNotifySettings(
            M.UpdateNotifySettingsRequest(
                settings=settings_pb2.NotifySettings(default_time_zone="Mars/Base"),
                update_mask=FieldMask(paths=["default_time_zone"]),
            ),
            metadata=auth(ADMIN),
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    async with http_provider() as fake:
        await _webhook_config(notify, fake.url)
        sent = await send(notify, reminder("rep-a1"))
    # Tenant default locale; the tenant's default channel for the category; no longer critical, so the
    # tenant's default quiet hours hold it.
    item = (await notify.stub.ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(REP_A1))).items[0]
    assert item.title == "Lead due soon: ACME L1"
    [delivery] = await _deliveries(notify, sent.notification.notification_id)
    assert delivery.channel == N.CHANNEL_WEBHOOK and delivery.status == D.DELIVERY_STATUS_HELD
    # A masked update touches only the named field.
    only_locale = await notify.stub.UpdateNotifySettings(
        M.UpdateNotifySettingsRequest(
            settings=settings_pb2.NotifySettings(default_locale="zh-CN"),
            update_mask=FieldMask(paths=["default_locale"]),
        ),
        metadata=auth(ADMIN),
    )
    assert only_locale.settings.default_locale == "zh-CN" and only_locale.settings.default_time_zone == "UTC"
