"""External deliveries as Temporal workflows: retried with back-off, poison fails alone, resend works."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.struct_pb2 import Struct
from temporalio.testing import WorkflowEnvironment

from kit import temporal
from salesops.notify.v1 import channel_config_pb2 as C
from salesops.notify.v1 import delivery_pb2 as D
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from salesops.notify.v1 import preference_pb2
from services.notify import activities as notify_activities
from services.notify import deliveries
from services.notify.channels.http_channels import SignedWebhook
from tests.notify.conftest import ADMIN, REP_A1, SERVICE, TENANT, NotifyStack, auth, outbox_types
from tests.notify.fakes import http_provider

pytestmark = pytest.mark.timeout(120)


def lead_note(
    lead_name: str, *users: str, channels: tuple[int, ...] = (N.CHANNEL_WEBHOOK,)
) -> N.Notification:
    """A non-critical notification about a lead (SLA categories are critical and skip holds and limits)."""
    values = Struct()
    values.update({"lead_name": lead_name})
    return N.Notification(
        category=N.NOTIFICATION_CATEGORY_LEAD_ASSIGNED,
        recipients=[N.Recipient(user_id=u) for u in users],
        template=N.TemplateContent(variables=values),
        channels=list(channels),
    )


async def _webhook_config(stack: NotifyStack, url: str) -> str:
    created = await stack.stub.CreateChannelConfig(
        M.CreateChannelConfigRequest(
            channel_config=C.ChannelConfig(
                display_name="ops hook",
                channel=N.CHANNEL_WEBHOOK,
                enabled=True,
                webhook=C.WebhookSettings(url=f"{url}/hook", signing_secret=C.Secret(value="0123456789abc")),
            )
        ),
        metadata=auth(ADMIN),
    )
    assert created.channel_config.webhook.signing_secret.set
    assert not created.channel_config.webhook.signing_secret.value  # write-only
    return created.channel_config.channel_config_id


async def _drain(stack: NotifyStack, env: WorkflowEnvironment, adapters: dict[int, Any]) -> list[str]:
    """Run the dispatcher once and wait for every delivery workflow it started."""
    activities = notify_activities.DeliveryActivities(stack.rt.db, adapters)
    queue = stack.rt.settings.task_queue
    worker = temporal.build_worker(
        env.client, queue, workflows=[deliveries.DeliveryWorkflow], activities=activities.all()
    )
    async with worker:
        started = await deliveries.start_due(stack.rt.db, env.client, queue)
        assert started > 0
        async with stack.rt.db.system_session() as s:
            from sqlalchemy import select

            from services.notify.store import DeliveryRow

            ids = list(
                await s.scalars(
                    select(DeliveryRow.id).where(DeliveryRow.dispatched.is_(True)).order_by(DeliveryRow.id)
                )
            )
        results = []
        for delivery_id in ids:
            handle = env.client.get_workflow_handle(f"delivery-{TENANT}-{delivery_id}")
            results.append(await finished(env, handle))
    return results


async def finished(env: WorkflowEnvironment, handle: Any) -> Any:
    """The workflow's result; skips time while it waits (history long-polls end early in skipped time)."""
    from temporalio.client import WorkflowExecutionStatus

    for _ in range(2000):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return await handle.result()
        await env.sleep(600)
    raise AssertionError("workflow did not finish")


async def _deliveries(stack: NotifyStack, notification_id: str) -> list[D.Delivery]:
    """Oldest first (the API lists newest first, as its contract says)."""
    page = await stack.stub.ListDeliveries(
        M.ListDeliveriesRequest(notification_id=notification_id), metadata=auth(ADMIN)
    )
    return list(reversed(page.deliveries))


async def test_provider_down_is_retried_then_delivered(
    notify: NotifyStack, temporal_skipping: WorkflowEnvironment
) -> None:
    async with http_provider(fail_times=3) as fake, httpx.AsyncClient() as client:
        await _webhook_config(notify, fake.url)
        sent = await notify.stub.SendNotification(
            M.SendNotificationRequest(notification=lead_note("ACME", "rep-a1")), metadata=auth(SERVICE)
        )
        queued = await _deliveries(notify, sent.notification.notification_id)
        assert [d.status for d in queued] == [D.DELIVERY_STATUS_QUEUED]
        results = await _drain(notify, temporal_skipping, {N.CHANNEL_WEBHOOK: SignedWebhook(client)})
    assert results == ["sent"]
    assert len(fake.requests) == 4  # three 503s, then accepted
    [done] = await _deliveries(notify, sent.notification.notification_id)
    assert done.status == D.DELIVERY_STATUS_SENT and done.attempt_count == 4
    assert done.address_masked == "rep-a1"


async def test_poison_payload_fails_visibly_and_others_are_unaffected(
    notify: NotifyStack, temporal_skipping: WorkflowEnvironment
) -> None:
    async with http_provider(poison_marker="POISON") as fake, httpx.AsyncClient() as client:
        await _webhook_config(notify, fake.url)
        bad = await notify.stub.SendNotification(
            M.SendNotificationRequest(notification=lead_note("POISON", "rep-a1")), metadata=auth(SERVICE)
        )
        good = await notify.stub.SendNotification(
            M.SendNotificationRequest(notification=lead_note("Fine Ltd", "rep-a1", "rep-a2")),
            metadata=auth(SERVICE),
        )
        results = await _drain(notify, temporal_skipping, {N.CHANNEL_WEBHOOK: SignedWebhook(client)})
        assert sorted(results) == ["failed", "sent", "sent"]
        [failed] = await _deliveries(notify, bad.notification.notification_id)
        assert failed.status == D.DELIVERY_STATUS_FAILED
        assert failed.last_error.permanent and failed.last_error.code == "HTTP_400"
        assert failed.attempt_count == 1  # permanent: not retried
        assert await outbox_types(notify) == ["notify.DeliveryFailed"]
        assert {d.status for d in await _deliveries(notify, good.notification.notification_id)} == {
            D.DELIVERY_STATUS_SENT
        }
        counts = (
            await notify.stub.GetNotification(
                M.GetNotificationRequest(notification_id=bad.notification.notification_id),
                metadata=auth(ADMIN),
            )
        ).notification.delivery_counts
        assert (counts.failed, counts.sent, counts.pending) == (1, 0, 0)
        # Re-send after the payload was fixed upstream: a new delivery, linked to the failed one.
        fake.poison_marker = ""
        resent = await notify.stub.ResendDelivery(
            M.ResendDeliveryRequest(
                notification_id=bad.notification.notification_id, delivery_id=failed.delivery_id
            ),
            metadata=auth(ADMIN),
        )
        assert resent.delivery.resent_from_delivery_id == failed.delivery_id
        await _drain(notify, temporal_skipping, {N.CHANNEL_WEBHOOK: SignedWebhook(client)})
    statuses = {d.delivery_id: d.status for d in await _deliveries(notify, bad.notification.notification_id)}
    assert statuses[resent.delivery.delivery_id] == D.DELIVERY_STATUS_SENT
    assert statuses[failed.delivery_id] == D.DELIVERY_STATUS_FAILED


async def test_retries_exhausted_end_failed(
    notify: NotifyStack, temporal_skipping: WorkflowEnvironment
) -> None:
    async with http_provider(fail_times=100) as fake, httpx.AsyncClient() as client:
        await _webhook_config(notify, fake.url)
        sent = await notify.stub.SendNotification(
            M.SendNotificationRequest(notification=lead_note("ACME", "rep-a1")), metadata=auth(SERVICE)
        )
        assert await _drain(notify, temporal_skipping, {N.CHANNEL_WEBHOOK: SignedWebhook(client)}) == [
            "failed"
        ]
    [failed] = await _deliveries(notify, sent.notification.notification_id)
    assert failed.status == D.DELIVERY_STATUS_FAILED and failed.attempt_count == 6
    assert failed.last_error.code == "HTTP_503"
    assert await outbox_types(notify) == ["notify.DeliveryFailed"]
    # Visible across notifications, and re-sendable in bulk (each id on its own).
    failures = await notify.stub.ListDeliveries(
        M.ListDeliveriesRequest(
            notification_id="-", filter=M.DeliveryFilter(statuses=[D.DELIVERY_STATUS_FAILED])
        ),
        metadata=auth(ADMIN),
    )
    assert [d.delivery_id for d in failures.deliveries] == [failed.delivery_id]
    batch = await notify.stub.BatchResendDeliveries(
        M.BatchResendDeliveriesRequest(delivery_ids=[failed.delivery_id, "01JC0000000000000000000000"]),
        metadata=auth(ADMIN),
    )
    assert batch.results[0].delivery.resent_from_delivery_id == failed.delivery_id
    assert batch.results[0].delivery.status == D.DELIVERY_STATUS_QUEUED
    assert batch.results[1].error.code == grpc.StatusCode.NOT_FOUND.value[0]


async def test_quiet_hours_hold_external_delivery_but_not_the_inbox(
    notify: NotifyStack, temporal_skipping: WorkflowEnvironment
) -> None:
    # A quiet window from 5 minutes ago to 3 hours from now (UTC), whatever the clock says.
    from datetime import UTC, datetime, timedelta

    from google.type import timeofday_pb2

    utc_now = datetime.now(UTC)
    begin = utc_now - timedelta(minutes=5)
    finish = utc_now + timedelta(hours=3)
    pref = preference_pb2.Preference(
        user_id="me",
        time_zone="UTC",
        quiet_hours=preference_pb2.QuietHours(
            enabled=True,
            start_time=timeofday_pb2.TimeOfDay(hours=begin.hour, minutes=begin.minute),
            end_time=timeofday_pb2.TimeOfDay(hours=finish.hour, minutes=finish.minute),
        ),
    )
    await notify.stub.UpdatePreference(M.UpdatePreferenceRequest(preference=pref), metadata=auth(REP_A1))
    async with http_provider() as fake, httpx.AsyncClient() as client:
        await _webhook_config(notify, fake.url)
        normal = await notify.stub.SendNotification(
            M.SendNotificationRequest(notification=lead_note("Quiet", "rep-a1")), metadata=auth(SERVICE)
        )
        critical = lead_note("Loud", "rep-a1")
        critical.priority = N.NOTIFICATION_PRIORITY_CRITICAL
        loud = await notify.stub.SendNotification(
            M.SendNotificationRequest(notification=critical), metadata=auth(SERVICE)
        )
        [held] = await _deliveries(notify, normal.notification.notification_id)
        [urgent] = await _deliveries(notify, loud.notification.notification_id)
        assert held.status == D.DELIVERY_STATUS_HELD
        assert abs(
            held.hold_until.ToDatetime(tzinfo=UTC) - finish.replace(second=0, microsecond=0)
        ) < timedelta(minutes=1)
        assert urgent.status == D.DELIVERY_STATUS_QUEUED
        inbox = await notify.stub.ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(REP_A1))
        assert inbox.total_size == 2  # the inbox is never held
        # The held delivery's workflow sleeps until the window ends (skipped time), then sends.
        results = await _drain(notify, temporal_skipping, {N.CHANNEL_WEBHOOK: SignedWebhook(client)})
    assert results == ["sent", "sent"]
    titles = [r.json()["title"] for r in fake.requests]
    assert titles[0].endswith("Loud")  # the critical one went first; the other waited for the window's end


async def test_bursts_beyond_the_rate_limit_fold_into_one_summary(
    notify: NotifyStack, temporal_skipping: WorkflowEnvironment
) -> None:
    async with http_provider() as fake, httpx.AsyncClient() as client:
        await _webhook_config(notify, fake.url)
        ids = []
        for i in range(7):  # tenant default: 5 per 10 minutes per channel
            sent = await notify.stub.SendNotification(
                M.SendNotificationRequest(notification=lead_note(f"Lead {i}", "rep-a1")),
                metadata=auth(SERVICE),
            )
            ids.append(sent.notification.notification_id)
        critical = lead_note("Urgent", "rep-a1")
        critical.priority = N.NOTIFICATION_PRIORITY_CRITICAL
        urgent = await notify.stub.SendNotification(
            M.SendNotificationRequest(notification=critical), metadata=auth(SERVICE)
        )
        firsts = [(await _deliveries(notify, nid))[0] for nid in ids]
        assert [d.status for d in firsts[:5]] == [D.DELIVERY_STATUS_QUEUED] * 5
        folded = firsts[5:]
        assert {d.status for d in folded} == {D.DELIVERY_STATUS_SUPPRESSED}
        assert {d.suppression_reason for d in folded} == {D.SUPPRESSION_REASON_FOLDED}
        assert len({d.folded_into_delivery_id for d in folded}) == 1  # one summary per channel
        [loud] = await _deliveries(notify, urgent.notification.notification_id)
        assert loud.status == D.DELIVERY_STATUS_QUEUED  # critical is never folded
        # The inbox is never limited.
        inbox = await notify.stub.ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(REP_A1))
        assert inbox.total_size == 8
        results = await _drain(notify, temporal_skipping, {N.CHANNEL_WEBHOOK: SignedWebhook(client)})
    # 5 + the critical one + the summary; the folded two are never sent alone.
    assert results == ["sent"] * 7
    titles = [r.json()["title"] for r in fake.requests]
    assert len(titles) == 7
    assert titles[-1] == "还有 2 条通知"
    assert fake.requests[-1].json()["body"] == "2 x lead_assigned"


async def test_channel_config_management_and_test_send(notify: NotifyStack) -> None:
    from google.protobuf.field_mask_pb2 import FieldMask

    async with http_provider(fail_times=1) as fake:
        config_id = await _webhook_config(notify, fake.url)
        failed = await notify.stub.TestChannelConfig(
            M.TestChannelConfigRequest(channel_config_id=config_id, recipient_user_id="rep-a1"),
            metadata=auth(ADMIN),
        )
        assert not failed.success and failed.error.code == "HTTP_503" and not failed.error.permanent
        ok = await notify.stub.TestChannelConfig(
            M.TestChannelConfigRequest(channel_config_id=config_id, address="ops-room"), metadata=auth(ADMIN)
        )
        assert ok.success and ok.latency.ToTimedelta().total_seconds() > 0
        assert fake.requests[-1].json()["recipient"] == "ops-room"
        assert fake.requests[-1].headers["x-salesops-signature"].startswith("v1=")
        # Renaming keeps the stored secret (secrets are write-only and not resent).
        got = (
            await notify.stub.GetChannelConfig(
                M.GetChannelConfigRequest(channel_config_id=config_id), metadata=auth(ADMIN)
            )
        ).channel_config
        got.display_name = "renamed"
        renamed = await notify.stub.UpdateChannelConfig(
            M.UpdateChannelConfigRequest(
                channel_config=got, update_mask=FieldMask(paths=["display_name", "webhook"])
            ),
            metadata=auth(ADMIN),
        )
        assert renamed.channel_config.display_name == "renamed"
        assert renamed.channel_config.webhook.signing_secret.set
        await notify.stub.TestChannelConfig(
            M.TestChannelConfigRequest(channel_config_id=config_id, address="x"), metadata=auth(ADMIN)
        )
        assert fake.requests[-1].headers["x-salesops-signature"].startswith("v1=")
    with pytest.raises(grpc.aio.AioRpcError) as err:  # stale etag
        await notify.stub.UpdateChannelConfig(
            M.UpdateChannelConfigRequest(channel_config=got), metadata=auth(ADMIN)
        )
    assert err.value.code() == grpc.StatusCode.ABORTED
    listed = await notify.stub.ListChannelConfigs(M.ListChannelConfigsRequest(), metadata=auth(SERVICE))
    assert [c.display_name for c in listed.channel_configs] == ["renamed"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify.stub.CreateChannelConfig(
            M.CreateChannelConfigRequest(
                channel_config=C.ChannelConfig(
                    display_name="bad",
                    channel=N.CHANNEL_WEBHOOK,
                    webhook=C.WebhookSettings(url="http://example.com/hook"),
                )
            ),
            metadata=auth(ADMIN),
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await notify.stub.DeleteChannelConfig(
        M.DeleteChannelConfigRequest(channel_config_id=config_id), metadata=auth(ADMIN)
    )
    assert not (
        await notify.stub.ListChannelConfigs(M.ListChannelConfigsRequest(), metadata=auth(ADMIN))
    ).channel_configs


async def test_dispatcher_loop_delivers_rows_queued_while_temporal_was_away(
    notify: NotifyStack, temporal_skipping: WorkflowEnvironment
) -> None:
    import asyncio

    async with http_provider() as fake, httpx.AsyncClient() as client:
        await _webhook_config(notify, fake.url)
        # Sent while no worker or dispatcher runs: the delivery waits in its row.
        sent = await notify.stub.SendNotification(
            M.SendNotificationRequest(notification=lead_note("Later", "rep-a1")), metadata=auth(SERVICE)
        )
        activities = notify_activities.DeliveryActivities(
            notify.rt.db, {N.CHANNEL_WEBHOOK: SignedWebhook(client)}
        )
        queue = notify.rt.settings.task_queue
        dispatcher = deliveries.Dispatcher(notify.rt.db, temporal_skipping.client, queue, interval=0.05)
        async with temporal.build_worker(
            temporal_skipping.client,
            queue,
            workflows=[deliveries.DeliveryWorkflow],
            activities=activities.all(),
        ):
            task = asyncio.create_task(dispatcher.run())
            for _ in range(200):
                [d] = await _deliveries(notify, sent.notification.notification_id)
                if d.status == D.DELIVERY_STATUS_SENT:
                    break
                await asyncio.sleep(0.05)
            await dispatcher.stop()
            await task
    assert d.status == D.DELIVERY_STATUS_SENT and len(fake.requests) == 1
    # The provider later reports the message read; receipts never move a status backwards.
    receipts = [
        D.DeliveryReceipt(
            channel=N.CHANNEL_WEBHOOK,
            provider_message_id=d.provider_message_id,
            status=D.DELIVERY_STATUS_READ,
        ),
        D.DeliveryReceipt(
            channel=N.CHANNEL_WEBHOOK,
            provider_message_id=d.provider_message_id,
            status=D.DELIVERY_STATUS_DELIVERED,
        ),
        D.DeliveryReceipt(
            channel=N.CHANNEL_WEBHOOK, provider_message_id="nope", status=D.DELIVERY_STATUS_READ
        ),
    ]
    out = await notify.stub.RecordDeliveryReceipts(
        M.RecordDeliveryReceiptsRequest(receipts=receipts), metadata=auth(SERVICE)
    )
    assert out.matched_count == 2 and list(out.unmatched_provider_message_ids) == ["nope"]
    [after] = await _deliveries(notify, sent.notification.notification_id)
    assert after.status == D.DELIVERY_STATUS_READ


async def test_expired_notifications_drop_pending_deliveries(
    notify: NotifyStack, temporal_skipping: WorkflowEnvironment
) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    async with http_provider() as fake, httpx.AsyncClient() as client:
        await _webhook_config(notify, fake.url)
        n = lead_note("Soon stale", "rep-a1")
        n.expire_time.FromDatetime(datetime.now(UTC) + timedelta(seconds=1))
        sent = await notify.stub.SendNotification(
            M.SendNotificationRequest(notification=n), metadata=auth(SERVICE)
        )
        await asyncio.sleep(1.2)
        assert await _drain(notify, temporal_skipping, {N.CHANNEL_WEBHOOK: SignedWebhook(client)}) == [
            "expired"
        ]
    assert fake.requests == []
    [d] = await _deliveries(notify, sent.notification.notification_id)
    assert d.status == D.DELIVERY_STATUS_CANCELLED
