"""gRPC servicer of the notify service: proto <-> domain, validation, error mapping.

RPCs not overridden here answer UNIMPLEMENTED (the generated base class).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import httpx
from google.protobuf.json_format import MessageToDict
from sqlalchemy import func, select
from ulid import ULID

from kit.auth import Principal
from kit.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SalesopsError,
    Violations,
)
from kit.grpc import context as call
from kit.grpc import diagnostics
from kit.grpc.server import Registration
from kit.runtime import Runtime
from salesops.common.v1 import types_pb2
from salesops.notify.v1 import (
    channel_config_pb2,
    delivery_pb2,
    escalation_pb2,
    notification_pb2,
    notify_service_pb2,
    notify_service_pb2_grpc,
    preference_pb2,
    settings_pb2,
    subscriber_pb2,
    template_pb2,
)
from services.notify import (
    cancelling,
    convert,
    deliveries,
    digests,
    directory,
    escalation,
    inbox,
    live,
    policies,
    sending,
    template_store,
    tenant_settings,
)
from services.notify.channels import registry
from services.notify.channels.base import Message, SendError
from services.notify.domain import digest as digest_rules
from services.notify.domain.quiet_hours import QuietWindow
from services.notify.domain.templates import LOCALES, TemplateError, render, validate
from services.notify.domain.templates import context as template_context
from services.notify.preferences import effective
from services.notify.preferences import load as load_preferences
from services.notify.store import (
    ChannelConfigRow,
    DeliveryRow,
    DeviceRow,
    EscalationPolicyRow,
    InboxItemRow,
    NotificationRow,
    PreferenceRow,
    SettingsRow,
    SubscriberRow,
    TemplateRow,
)

M = notify_service_pb2
Ctx = grpc.aio.ServicerContext[Any, Any]
HEARTBEAT_SECONDS = 20.0


def _sender(p: Principal) -> None:
    if not (p.is_admin or p.is_service):
        raise PermissionDenied("sending takes an admin or service identity")


def _admin(p: Principal, *, reads_for_services: bool = False) -> None:
    if p.is_admin or (reads_for_services and p.is_service):
        return
    raise PermissionDenied("configuration is admin only")


def _user(p: Principal, user_id: str) -> str:
    """`me` is the caller; someone else's preferences are for admins and services only."""
    if user_id in ("", "me"):
        return p.user_id
    if user_id != p.user_id and not (p.is_admin or p.is_service):
        raise PermissionDenied("another user's preferences")
    return user_id


class NotifyServiceApi(notify_service_pb2_grpc.NotifyServiceServicer):
    def __init__(self, rt: Runtime, hub: live.InboxHub | None = None) -> None:
        self.rt = rt
        # TestChannelConfig sends through the same adapters as the delivery activities.
        self.adapters = registry.adapters(httpx.AsyncClient(timeout=10.0))
        self.sender = sending.Sender(rt.db, rt.redis)
        self.hub = hub or live.InboxHub(rt.redis)

    # ---- sending ------------------------------------------------------------

    async def SendNotification(
        self, request: M.SendNotificationRequest, context: Ctx
    ) -> M.SendNotificationResponse:
        p = call.principal()
        _sender(p)
        source = notification_pb2.NotificationSource(service="admin" if p.is_admin else p.user_id)
        outcome = await self.sender.send(p.tenant, request.notification, is_admin=p.is_admin, source=source)
        if outcome.notification.escalation.state == notification_pb2.ESCALATION_STATE_AWAITING_ACK:
            await escalation.start_quietly(self.rt, p.tenant, outcome.notification.notification_id)
        return M.SendNotificationResponse(
            notification=outcome.notification, deduplicated=outcome.deduplicated
        )

    async def GetNotification(
        self, request: M.GetNotificationRequest, context: Ctx
    ) -> M.GetNotificationResponse:
        p = call.principal()
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(select(NotificationRow).where(NotificationRow.id == request.notification_id))
            if row is None:
                raise NotFound("notification", request.notification_id)
            n = sending.stored(row)
            if not (p.is_admin or p.is_service):
                # Recipients (original or reached by escalation) see it; to anyone else it does not exist.
                mine = await s.scalar(
                    select(InboxItemRow.id).where(
                        InboxItemRow.notification_id == row.id, InboxItemRow.user_id == p.user_id
                    )
                )
                if mine is None:
                    raise NotFound("notification", request.notification_id)
            await deliveries.fill_counts(s, n)
        return M.GetNotificationResponse(notification=n)

    async def AcknowledgeNotification(
        self, request: M.AcknowledgeNotificationRequest, context: Ctx
    ) -> M.AcknowledgeNotificationResponse:
        p = call.principal()
        n = await escalation.acknowledge(
            self.rt, p.tenant, request.notification_id, p.user_id, request.channel
        )
        return M.AcknowledgeNotificationResponse(notification=n)

    async def BatchSendNotifications(
        self, request: M.BatchSendNotificationsRequest, context: Ctx
    ) -> M.BatchSendNotificationsResponse:
        from kit.grpc.errors import to_status_proto

        p = call.principal()
        _sender(p)
        if not 1 <= len(request.requests) <= 100:
            raise InvalidArgument.field("requests", "1 to 100 sends per batch")
        source = notification_pb2.NotificationSource(service="admin" if p.is_admin else p.user_id)
        results = []
        for one in request.requests:
            try:
                outcome = await self.sender.send(
                    p.tenant, one.notification, is_admin=p.is_admin, source=source
                )
            except SalesopsError as exc:  # each item stands alone: one bad notification fails only itself
                results.append(M.BatchSendResult(error=to_status_proto(exc, "notify")))
                continue
            if outcome.notification.escalation.state == notification_pb2.ESCALATION_STATE_AWAITING_ACK:
                await escalation.start_quietly(self.rt, p.tenant, outcome.notification.notification_id)
            results.append(
                M.BatchSendResult(notification=outcome.notification, deduplicated=outcome.deduplicated)
            )
        return M.BatchSendNotificationsResponse(results=results)

    async def ListNotifications(
        self, request: M.ListNotificationsRequest, context: Ctx
    ) -> M.ListNotificationsResponse:
        p = call.principal()
        _admin(p, reads_for_services=True)
        size = 50 if request.page_size <= 0 else min(request.page_size, 200)
        f = request.filter
        query = select(NotificationRow)
        if f.categories:
            query = query.where(NotificationRow.category.in_([convert.category_key(c) for c in f.categories]))
        if f.states:
            query = query.where(NotificationRow.state.in_(list(f.states)))
        if f.escalation_states:
            query = query.where(NotificationRow.escalation_state.in_(list(f.escalation_states)))
        if f.dedupe_key:
            query = query.where(NotificationRow.dedupe_key == f.dedupe_key)
        if f.source_service:
            query = query.where(NotificationRow.source_service == f.source_service)
        if request.page_token:
            query = query.where(NotificationRow.id < request.page_token)
        async with self.rt.db.session(p.tenant) as s:
            rows = list(await s.scalars(query.order_by(NotificationRow.id.desc()).limit(size + 1)))
        more = len(rows) > size
        rows = rows[:size]
        return M.ListNotificationsResponse(
            notifications=[sending.stored(r) for r in rows], next_page_token=rows[-1].id if more else ""
        )

    async def CancelNotification(
        self, request: M.CancelNotificationRequest, context: Ctx
    ) -> M.CancelNotificationResponse:
        p = call.principal()
        _sender(p)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(select(NotificationRow).where(NotificationRow.id == request.notification_id))
            if row is None:
                raise NotFound("notification", request.notification_id)
            items = await cancelling.cancel(s, [row], request.reason)
            await s.commit()
            n = sending.stored(row)
        await self._tell_items(p.tenant, items)
        return M.CancelNotificationResponse(notification=n)

    async def CancelMatchingNotifications(
        self, request: M.CancelMatchingNotificationsRequest, context: Ctx
    ) -> M.CancelMatchingNotificationsResponse:
        p = call.principal()
        _sender(p)
        if not request.dedupe_key and not request.subject.id:
            raise InvalidArgument.field("dedupe_key", "a dedupe key or a subject is required")
        async with self.rt.db.session(p.tenant) as s:
            rows = await cancelling.matching(
                s,
                dedupe_key=request.dedupe_key,
                subject_service=request.subject.service,
                subject_kind=request.subject.kind,
                subject_id=request.subject.id,
                categories=[convert.category_key(c) for c in request.categories],
            )
            items = await cancelling.cancel(s, rows, request.reason)
            await s.commit()
        await self._tell_items(p.tenant, items)
        return M.CancelMatchingNotificationsResponse(notification_ids=[r.id for r in rows])

    async def _tell_items(self, tenant: str, items: list[InboxItemRow]) -> None:
        events = [
            (tenant, i.user_id, M.StreamInboxResponse(cursor=i.id, item_updated=convert.inbox_item(i)))
            for i in items
        ]
        with contextlib.suppress(Exception):  # committed; streams resync on reconnect
            await live.publish(self.rt.redis, events)

    # ---- deliveries ---------------------------------------------------------

    async def RecordDeliveryReceipts(
        self, request: M.RecordDeliveryReceiptsRequest, context: Ctx
    ) -> M.RecordDeliveryReceiptsResponse:
        p = call.principal()
        _sender(p)
        if not 1 <= len(request.receipts) <= 500:
            raise InvalidArgument.field("receipts", "1 to 500 receipts")
        async with self.rt.db.session(p.tenant) as s:
            matched, unmatched = await deliveries.record_receipts(s, list(request.receipts))
            await s.commit()
        return M.RecordDeliveryReceiptsResponse(
            matched_count=matched, unmatched_provider_message_ids=unmatched
        )

    async def ListDeliveries(
        self, request: M.ListDeliveriesRequest, context: Ctx
    ) -> M.ListDeliveriesResponse:
        p = call.principal()
        _admin(p, reads_for_services=True)
        size = 100 if request.page_size <= 0 else min(request.page_size, 500)
        async with self.rt.db.session(p.tenant) as s:
            rows, token = await deliveries.listing(
                s, request.notification_id or "-", request.filter, size=size, token=request.page_token
            )
        return M.ListDeliveriesResponse(deliveries=[deliveries.proto(r) for r in rows], next_page_token=token)

    async def BatchResendDeliveries(
        self, request: M.BatchResendDeliveriesRequest, context: Ctx
    ) -> M.BatchResendDeliveriesResponse:
        from kit.grpc.errors import to_status_proto

        p = call.principal()
        _admin(p)
        if not 1 <= len(request.delivery_ids) <= 100:
            raise InvalidArgument.field("delivery_ids", "1 to 100 deliveries")
        results = []
        for delivery_id in request.delivery_ids:
            try:
                async with self.rt.db.session(p.tenant) as s:
                    row = await deliveries.resend(s, "-", delivery_id, force=False)
                    await s.commit()
                results.append(M.BatchResendResult(delivery_id=delivery_id, delivery=deliveries.proto(row)))
            except SalesopsError as exc:  # each stands alone
                results.append(
                    M.BatchResendResult(delivery_id=delivery_id, error=to_status_proto(exc, "notify"))
                )
        return M.BatchResendDeliveriesResponse(results=results)

    async def ResendDelivery(
        self, request: M.ResendDeliveryRequest, context: Ctx
    ) -> M.ResendDeliveryResponse:
        p = call.principal()
        _admin(p)
        async with self.rt.db.session(p.tenant) as s:
            row = await deliveries.resend(
                s, request.notification_id, request.delivery_id, force=request.force
            )
            await s.commit()
        return M.ResendDeliveryResponse(delivery=deliveries.proto(row))

    async def GetDelivery(self, request: M.GetDeliveryRequest, context: Ctx) -> M.GetDeliveryResponse:
        p = call.principal()
        _admin(p, reads_for_services=True)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(
                select(DeliveryRow).where(
                    DeliveryRow.id == request.delivery_id,
                    DeliveryRow.notification_id == request.notification_id,
                )
            )
        if row is None:
            raise NotFound("delivery", request.delivery_id)
        return M.GetDeliveryResponse(delivery=deliveries.proto(row))

    # ---- inbox --------------------------------------------------------------

    async def ListInboxItems(
        self, request: M.ListInboxItemsRequest, context: Ctx
    ) -> M.ListInboxItemsResponse:
        p = call.principal()
        cats = [convert.category_key(c) for c in request.filter.categories]
        async with self.rt.db.session(p.tenant) as s:
            rows, token, total = await inbox.page(
                s,
                p.user_id,
                size=request.page_size,
                token=request.page_token,
                f=request.filter,
                categories=cats,
            )
            counts = await inbox.unread_count(s, p.user_id)
        return M.ListInboxItemsResponse(
            items=[convert.inbox_item(r) for r in rows],
            next_page_token=token,
            total_size=total,
            unread_count=counts,
        )

    async def GetInboxItem(self, request: M.GetInboxItemRequest, context: Ctx) -> M.GetInboxItemResponse:
        p = call.principal()
        async with self.rt.db.session(p.tenant) as s:
            row = await inbox.get(s, p.user_id, request.item_id)
        return M.GetInboxItemResponse(item=convert.inbox_item(row))

    async def GetInboxUnreadCount(
        self, request: M.GetInboxUnreadCountRequest, context: Ctx
    ) -> M.GetInboxUnreadCountResponse:
        p = call.principal()
        async with self.rt.db.session(p.tenant) as s:
            return M.GetInboxUnreadCountResponse(unread_count=await inbox.unread_count(s, p.user_id))

    async def _mark(self, item_id: str, read: bool) -> tuple[Any, Any]:
        p = call.principal()
        async with self.rt.db.session(p.tenant) as s:
            row = await inbox.set_read(s, p.user_id, item_id, read)
            await s.commit()
            counts = await inbox.unread_count(s, p.user_id)
        item = convert.inbox_item(row)
        await self._tell(
            p,
            [
                M.StreamInboxResponse(cursor=row.id, item_updated=item),
                M.StreamInboxResponse(unread_count=counts),
            ],
        )
        return item, counts

    async def MarkInboxItemRead(
        self, request: M.MarkInboxItemReadRequest, context: Ctx
    ) -> M.MarkInboxItemReadResponse:
        item, counts = await self._mark(request.item_id, True)
        return M.MarkInboxItemReadResponse(item=item, unread_count=counts)

    async def MarkInboxItemUnread(
        self, request: M.MarkInboxItemUnreadRequest, context: Ctx
    ) -> M.MarkInboxItemUnreadResponse:
        item, counts = await self._mark(request.item_id, False)
        return M.MarkInboxItemUnreadResponse(item=item, unread_count=counts)

    async def MarkAllInboxItemsRead(
        self, request: M.MarkAllInboxItemsReadRequest, context: Ctx
    ) -> M.MarkAllInboxItemsReadResponse:
        p = call.principal()
        cats = [convert.category_key(c) for c in request.categories]
        async with self.rt.db.session(p.tenant) as s:
            marked = await inbox.mark_all_read(s, p.user_id, request.up_to_item_id, cats)
            await s.commit()
            counts = await inbox.unread_count(s, p.user_id)
        await self._tell(p, [M.StreamInboxResponse(unread_count=counts)])
        return M.MarkAllInboxItemsReadResponse(marked_count=marked, unread_count=counts)

    async def _tell(self, p: Principal, events: list[M.StreamInboxResponse]) -> None:
        # The change is committed; other devices resync on their next call if this fails.
        with contextlib.suppress(Exception):
            await live.publish(self.rt.redis, [(p.tenant, p.user_id, e) for e in events])

    async def StreamInbox(
        self, request: M.StreamInboxRequest, context: Ctx
    ) -> AsyncIterator[M.StreamInboxResponse]:
        p = call.principal()
        wanted = {convert.category_key(c) for c in request.categories}
        # Subscribe first, then read the database: nothing committed in between is missed.
        async with self.hub.listen(p.tenant, p.user_id) as queue:
            async with self.rt.db.session(p.tenant) as s:
                replay = (
                    await inbox.since(s, p.user_id, request.resume_cursor) if request.resume_cursor else []
                )
                counts = await inbox.unread_count(s, p.user_id)
            last = request.resume_cursor
            for row in replay:
                if not wanted or row.category in wanted:
                    yield M.StreamInboxResponse(cursor=row.id, item_added=convert.inbox_item(row))
                last = row.id
            yield M.StreamInboxResponse(unread_count=counts)
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    beat = M.StreamInboxResponse()
                    beat.heartbeat.server_time.FromDatetime(datetime.now(UTC))
                    yield beat
                    continue
                event = M.StreamInboxResponse.FromString(data)
                if event.HasField("item_added"):
                    if event.cursor and last and event.cursor <= last:
                        continue  # already replayed
                    if wanted and convert.category_key(event.item_added.category) not in wanted:
                        continue
                yield event

    # ---- preferences --------------------------------------------------------

    async def GetPreference(self, request: M.GetPreferenceRequest, context: Ctx) -> M.GetPreferenceResponse:
        p = call.principal()
        user = _user(p, request.user_id)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(select(PreferenceRow).where(PreferenceRow.user_id == user))
        if row is None:
            return M.GetPreferenceResponse(
                preference=preference_pb2.Preference(user_id=user, locale="zh-CN", time_zone="Asia/Shanghai")
            )
        pref = preference_pb2.Preference.FromString(row.payload)
        pref.etag = str(row.version)
        return M.GetPreferenceResponse(preference=pref)

    async def UpdatePreference(
        self, request: M.UpdatePreferenceRequest, context: Ctx
    ) -> M.UpdatePreferenceResponse:
        p = call.principal()
        pref = preference_pb2.Preference()
        pref.CopyFrom(request.preference)
        pref.user_id = _user(p, pref.user_id)
        _check_preference(pref)
        now = datetime.now(UTC)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(select(PreferenceRow).where(PreferenceRow.user_id == pref.user_id))
            if row is None:
                row = PreferenceRow(user_id=pref.user_id, version=1, payload=b"", updated_at=now)
                s.add(row)
            else:
                if pref.etag and pref.etag != str(row.version):
                    raise Aborted("the preference changed since it was read; reload and retry")
                row.version += 1
            pref.etag = ""
            row.payload = pref.SerializeToString()
            row.updated_at = now
            await s.commit()
            pref.etag = str(row.version)
        return M.UpdatePreferenceResponse(preference=pref)

    async def PreviewDigest(self, request: M.PreviewDigestRequest, context: Ctx) -> M.PreviewDigestResponse:
        p = call.principal()
        user = _user(p, request.user_id)
        async with self.rt.db.session(p.tenant) as s:
            pref = (await load_preferences(s, [user])).get(user)
            roles = await s.scalar(select(SubscriberRow.roles).where(SubscriberRow.user_id == user))
            cfg = digests.settings_for(
                pref, set((roles or "").split(",")), await tenant_settings.load_defaults(s)
            )
            if request.HasField("date"):
                try:
                    day = date(request.date.year, request.date.month, request.date.day)
                except ValueError:
                    raise InvalidArgument.field("date", "not a calendar date") from None
            else:
                day = datetime.now(ZoneInfo(cfg.time_zone)).date()
            sections = digest_rules.build(await digests.entries(s, user, day), day, cfg.time_zone)
        out = digests.as_proto(user, day, cfg.time_zone, sections)
        if cfg.enabled and (sections or not cfg.skip_when_empty):
            local = datetime.combine(day, cfg.send_time, tzinfo=ZoneInfo(cfg.time_zone))
            out.scheduled_time.FromDatetime(local.astimezone(UTC))
        return M.PreviewDigestResponse(digest=out)

    # ---- devices (the caller's own) -----------------------------------------

    async def RegisterDevice(
        self, request: M.RegisterDeviceRequest, context: Ctx
    ) -> M.RegisterDeviceResponse:
        p = call.principal()
        d = subscriber_pb2.Device()
        d.CopyFrom(request.device)
        v = Violations()
        if not d.device_id or len(d.device_id) > 64:
            v.add("device.device_id", "1 to 64 characters")
        if not d.platform:
            v.add("device.platform", "required")
        if not d.push_provider:
            v.add("device.push_provider", "required")
        if not d.push_token.value:
            v.add("device.push_token", "required")
        v.raise_if_any("invalid device")
        now = datetime.now(UTC)
        d.user_id = p.user_id
        d.last_register_time.FromDatetime(now)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(select(DeviceRow).where(DeviceRow.device_id == d.device_id))
            if row is None:
                count = await s.scalar(select(func.count()).where(DeviceRow.user_id == p.user_id))
                if (count or 0) >= 20:
                    raise FailedPrecondition("at most 20 devices per user; unregister an old one first")
                row = DeviceRow(device_id=d.device_id, user_id=p.user_id)
                s.add(row)
            else:
                # The same installation under a new login moves to the new user.
                row.user_id = p.user_id
            row.payload = d.SerializeToString()
            row.registered_at = now
            await s.commit()
        return M.RegisterDeviceResponse(device=_device_out(d))

    async def ListDevices(self, request: M.ListDevicesRequest, context: Ctx) -> M.ListDevicesResponse:
        p = call.principal()
        async with self.rt.db.session(p.tenant) as s:
            rows = list(
                await s.scalars(
                    select(DeviceRow).where(DeviceRow.user_id == p.user_id).order_by(DeviceRow.device_id)
                )
            )
        return M.ListDevicesResponse(
            devices=[_device_out(subscriber_pb2.Device.FromString(r.payload)) for r in rows]
        )

    async def UnregisterDevice(
        self, request: M.UnregisterDeviceRequest, context: Ctx
    ) -> M.UnregisterDeviceResponse:
        p = call.principal()
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(
                select(DeviceRow).where(
                    DeviceRow.device_id == request.device_id, DeviceRow.user_id == p.user_id
                )
            )
            if row is not None:  # idempotent: unknown or another user's device is simply not there
                await s.delete(row)
                await s.commit()
        return M.UnregisterDeviceResponse()

    # ---- templates ----------------------------------------------------------

    async def CreateTemplate(
        self, request: M.CreateTemplateRequest, context: Ctx
    ) -> M.CreateTemplateResponse:
        p = call.principal()
        _admin(p)
        t = template_pb2.Template()
        t.CopyFrom(request.template)
        _validate_template(t)
        t.template_id = t.template_id or str(ULID())
        t.revision = 1
        t.built_in = False
        now = datetime.now(UTC)
        async with self.rt.db.session(p.tenant) as s:
            exists = await s.scalar(
                select(func.count()).where(
                    TemplateRow.template_key == t.template_key, TemplateRow.locale == t.locale
                )
            )
            if exists:
                raise AlreadyExists("template", f"{t.template_key}/{t.locale}")
            s.add(
                TemplateRow(
                    id=t.template_id,
                    template_key=t.template_key,
                    locale=t.locale,
                    category=convert.category_key(t.category),
                    revision=1,
                    payload=t.SerializeToString(),
                    updated_at=now,
                )
            )
            await s.commit()
        t.etag = "1"
        return M.CreateTemplateResponse(template=t)

    async def GetTemplate(self, request: M.GetTemplateRequest, context: Ctx) -> M.GetTemplateResponse:
        p = call.principal()
        return M.GetTemplateResponse(template=await self._template(p, request.template_id))

    async def _template(self, p: Principal, template_id: str) -> template_pb2.Template:
        if template_id.startswith("builtin."):
            _, key, locale = template_id.split(".", 2) if template_id.count(".") >= 2 else ("", "", "")
            from services.notify.domain.templates import BUILT_INS

            spec = BUILT_INS.get((key, locale))
            if spec is None:
                raise NotFound("template", template_id)
            return template_store.proto_from_spec(spec)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(select(TemplateRow).where(TemplateRow.id == template_id))
        if row is None:
            raise NotFound("template", template_id)
        t = template_pb2.Template.FromString(row.payload)
        t.revision, t.etag = row.revision, str(row.revision)
        return t

    async def ListTemplates(self, request: M.ListTemplatesRequest, context: Ctx) -> M.ListTemplatesResponse:
        p = call.principal()
        _admin(p, reads_for_services=True)
        from services.notify.domain.templates import built_in_templates

        async with self.rt.db.session(p.tenant) as s:
            rows = list(
                await s.scalars(select(TemplateRow).order_by(TemplateRow.template_key, TemplateRow.locale))
            )
        own = [template_pb2.Template.FromString(r.payload) for r in rows]
        out = own + [template_store.proto_from_spec(b) for b in built_in_templates()]
        f = request.filter
        out = [
            t
            for t in out
            if (not f.template_key or t.template_key == f.template_key)
            and (not f.locale or t.locale == f.locale)
            and (not f.categories or t.category in f.categories)
            and (not f.HasField("built_in") or t.built_in == f.built_in.value)
        ]
        return M.ListTemplatesResponse(templates=out, total_size=len(out))

    async def UpdateTemplate(
        self, request: M.UpdateTemplateRequest, context: Ctx
    ) -> M.UpdateTemplateResponse:
        p = call.principal()
        _admin(p)
        incoming = request.template
        if incoming.template_id.startswith("builtin."):
            raise InvalidArgument.field("template.template_id", "built-in templates are read-only")
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(select(TemplateRow).where(TemplateRow.id == incoming.template_id))
            if row is None:
                raise NotFound("template", incoming.template_id)
            if incoming.etag and incoming.etag != str(row.revision):
                raise Aborted("the template changed since it was read; reload and retry")
            current = template_pb2.Template.FromString(row.payload)
            paths = list(request.update_mask.paths) or [
                "display_name",
                "description",
                "variables",
                "title",
                "body",
                "channel_templates",
            ]
            for path in paths:
                if path in ("template_key", "locale", "category", "template_id"):
                    raise InvalidArgument.field(f"update_mask.{path}", "immutable")
                if path not in (
                    "display_name",
                    "description",
                    "variables",
                    "title",
                    "body",
                    "channel_templates",
                ):
                    raise InvalidArgument.field("update_mask", f"unknown field {path!r}")
                current.ClearField(path)  # type: ignore[arg-type]
                value = getattr(incoming, path)
                if path in ("variables", "channel_templates"):
                    getattr(current, path).extend(value)
                else:
                    setattr(current, path, value)
            _validate_template(current)
            row.revision += 1
            current.revision = row.revision
            current.etag = ""
            row.payload = current.SerializeToString()
            row.updated_at = datetime.now(UTC)
            await s.commit()
            current.etag = str(row.revision)
        return M.UpdateTemplateResponse(template=current)

    async def DeleteTemplate(
        self, request: M.DeleteTemplateRequest, context: Ctx
    ) -> M.DeleteTemplateResponse:
        p = call.principal()
        _admin(p)
        if request.template_id.startswith("builtin."):
            raise InvalidArgument.field("template_id", "built-in templates are read-only")
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(select(TemplateRow).where(TemplateRow.id == request.template_id))
            if row is None:
                raise NotFound("template", request.template_id)
            await s.delete(row)
            await s.commit()
        return M.DeleteTemplateResponse()

    async def PreviewTemplate(
        self, request: M.PreviewTemplateRequest, context: Ctx
    ) -> M.PreviewTemplateResponse:
        p = call.principal()
        if request.WhichOneof("source") == "draft":
            _validate_template(request.draft)
            t = request.draft
        else:
            t = await self._template(p, request.template_id)
        spec = template_store.spec_from_proto(t)
        values: dict[str, Any] = {
            v.name: MessageToDict(v.example) if v.HasField("example") else f"<{v.name}>" for v in t.variables
        }
        values.update(MessageToDict(request.variables))
        now = datetime.now(UTC)
        rendered = render(
            spec,
            template_context(
                values, recipient_name=request.recipient_user_id or p.user_id, due_time=now, now=now
            ),
        )
        channels = list(request.channels) or [notification_pb2.CHANNEL_IN_APP]
        return M.PreviewTemplateResponse(
            rendered=[
                template_pb2.RenderedChannel(
                    channel=ch,
                    title=rendered.title,
                    body=rendered.body,
                    format=template_pb2.BODY_FORMAT_MARKDOWN,
                    warnings=rendered.warnings,
                )
                for ch in channels
            ]
        )

    # ---- channel configs ----------------------------------------------------

    async def CreateChannelConfig(
        self, request: M.CreateChannelConfigRequest, context: Ctx
    ) -> M.CreateChannelConfigResponse:
        p = call.principal()
        _admin(p)
        cfg = channel_config_pb2.ChannelConfig()
        cfg.CopyFrom(request.channel_config)
        _check_channel_config(cfg)
        cfg.channel_config_id = cfg.channel_config_id or str(ULID())
        async with self.rt.db.session(p.tenant) as s:
            s.add(
                ChannelConfigRow(
                    id=cfg.channel_config_id,
                    channel=cfg.channel,
                    enabled=cfg.enabled,
                    version=1,
                    payload=cfg.SerializeToString(),
                    updated_at=datetime.now(UTC),
                )
            )
            await s.commit()
        cfg.etag = "1"
        return M.CreateChannelConfigResponse(channel_config=_redacted(cfg))

    async def ListChannelConfigs(
        self, request: M.ListChannelConfigsRequest, context: Ctx
    ) -> M.ListChannelConfigsResponse:
        p = call.principal()
        _admin(p, reads_for_services=True)
        query = select(ChannelConfigRow).order_by(ChannelConfigRow.id)
        if request.channel:
            query = query.where(ChannelConfigRow.channel == request.channel)
        if request.HasField("enabled"):
            query = query.where(ChannelConfigRow.enabled.is_(request.enabled.value))
        async with self.rt.db.session(p.tenant) as s:
            rows = list(await s.scalars(query))
        out = []
        for row in rows:
            cfg = channel_config_pb2.ChannelConfig.FromString(row.payload)
            cfg.etag = str(row.version)
            out.append(_redacted(cfg))
        return M.ListChannelConfigsResponse(channel_configs=out, total_size=len(out))

    async def UpdateChannelConfig(
        self, request: M.UpdateChannelConfigRequest, context: Ctx
    ) -> M.UpdateChannelConfigResponse:
        p = call.principal()
        _admin(p)
        incoming = request.channel_config
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(
                select(ChannelConfigRow).where(ChannelConfigRow.id == incoming.channel_config_id)
            )
            if row is None:
                raise NotFound("channel_config", incoming.channel_config_id)
            if incoming.etag and incoming.etag != str(row.version):
                raise Aborted("the channel configuration changed since it was read; reload and retry")
            current = channel_config_pb2.ChannelConfig.FromString(row.payload)
            merged = _merge_channel_config(current, incoming, list(request.update_mask.paths))
            _check_channel_config(merged)
            row.payload = merged.SerializeToString()
            row.enabled = merged.enabled
            row.version += 1
            row.updated_at = datetime.now(UTC)
            await s.commit()
            merged.etag = str(row.version)
        return M.UpdateChannelConfigResponse(channel_config=_redacted(merged))

    async def DeleteChannelConfig(
        self, request: M.DeleteChannelConfigRequest, context: Ctx
    ) -> M.DeleteChannelConfigResponse:
        p = call.principal()
        _admin(p)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(
                select(ChannelConfigRow).where(ChannelConfigRow.id == request.channel_config_id)
            )
            if row is None:
                raise NotFound("channel_config", request.channel_config_id)
            if request.etag and request.etag != str(row.version):
                raise Aborted("the channel configuration changed since it was read; reload and retry")
            await s.delete(row)
            await s.commit()
        return M.DeleteChannelConfigResponse()

    async def TestChannelConfig(
        self, request: M.TestChannelConfigRequest, context: Ctx
    ) -> M.TestChannelConfigResponse:
        p = call.principal()
        _admin(p)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(
                select(ChannelConfigRow).where(ChannelConfigRow.id == request.channel_config_id)
            )
            if row is None:
                raise NotFound("channel_config", request.channel_config_id)
            address = request.address
            if not address:
                user = request.recipient_user_id or p.user_id
                subs = await directory.subscribers(s, [user])
                address = sending.address_for(subs.get(user), row.channel)
        if not address:
            raise InvalidArgument.field(
                "address", "no address for this channel: give one or a recipient_user_id"
            )
        cfg = channel_config_pb2.ChannelConfig.FromString(row.payload)
        adapter = self.adapters.get(row.channel)
        if adapter is None:
            raise InvalidArgument.field("channel_config_id", "this channel has no adapter")
        message = Message(str(ULID()), "", "system", address, "SalesOps test message", "This is a test.")
        started = asyncio.get_running_loop().time()
        out = M.TestChannelConfigResponse()
        try:
            out.provider_message_id = await adapter.send(cfg, message)
            out.success = True
        except SendError as exc:
            out.error.CopyFrom(
                delivery_pb2.DeliveryError(
                    code=exc.code,
                    message=exc.message,
                    provider_code=exc.provider_code,
                    permanent=exc.permanent,
                )
            )
        out.latency.FromTimedelta(timedelta(seconds=asyncio.get_running_loop().time() - started))
        return out

    async def GetChannelConfig(
        self, request: M.GetChannelConfigRequest, context: Ctx
    ) -> M.GetChannelConfigResponse:
        p = call.principal()
        _admin(p, reads_for_services=True)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(
                select(ChannelConfigRow).where(ChannelConfigRow.id == request.channel_config_id)
            )
        if row is None:
            raise NotFound("channel_config", request.channel_config_id)
        cfg = channel_config_pb2.ChannelConfig.FromString(row.payload)
        cfg.etag = str(row.version)
        return M.GetChannelConfigResponse(channel_config=_redacted(cfg))

    # ---- escalation policies ------------------------------------------------

    async def CreateEscalationPolicy(
        self, request: M.CreateEscalationPolicyRequest, context: Ctx
    ) -> M.CreateEscalationPolicyResponse:
        p = call.principal()
        _admin(p)
        policy = escalation_pb2.EscalationPolicy()
        policy.CopyFrom(request.escalation_policy)
        policies.validate(policy)
        policy.escalation_policy_id = policy.escalation_policy_id or str(ULID())
        policy.built_in, policy.etag = False, ""
        async with self.rt.db.session(p.tenant) as s:
            exists = await s.scalar(
                select(func.count()).where(EscalationPolicyRow.id == policy.escalation_policy_id)
            )
            if exists:
                raise AlreadyExists("escalation_policy", policy.escalation_policy_id)
            s.add(
                EscalationPolicyRow(
                    id=policy.escalation_policy_id,
                    version=1,
                    payload=policy.SerializeToString(),
                    updated_at=datetime.now(UTC),
                )
            )
            await s.commit()
        policy.etag = "1"
        return M.CreateEscalationPolicyResponse(escalation_policy=policy)

    async def GetEscalationPolicy(
        self, request: M.GetEscalationPolicyRequest, context: Ctx
    ) -> M.GetEscalationPolicyResponse:
        p = call.principal()
        _admin(p, reads_for_services=True)
        async with self.rt.db.session(p.tenant) as s:
            policy = await policies.load(s, p.tenant, request.escalation_policy_id)
            version = await s.scalar(
                select(EscalationPolicyRow.version).where(
                    EscalationPolicyRow.id == policy.escalation_policy_id
                )
            )
        policy.etag = str(version or 0)
        return M.GetEscalationPolicyResponse(escalation_policy=policy)

    async def ListEscalationPolicies(
        self, request: M.ListEscalationPoliciesRequest, context: Ctx
    ) -> M.ListEscalationPoliciesResponse:
        p = call.principal()
        _admin(p, reads_for_services=True)
        async with self.rt.db.session(p.tenant) as s:
            rows = list(await s.scalars(select(EscalationPolicyRow).order_by(EscalationPolicyRow.id)))
        out = []
        for row in rows:
            policy = escalation_pb2.EscalationPolicy.FromString(row.payload)
            policy.etag = str(row.version)
            out.append(policy)
        if policies.DEFAULT_ID not in {r.id for r in rows}:
            out.insert(0, policies.built_in())
        return M.ListEscalationPoliciesResponse(escalation_policies=out, total_size=len(out))

    async def UpdateEscalationPolicy(
        self, request: M.UpdateEscalationPolicyRequest, context: Ctx
    ) -> M.UpdateEscalationPolicyResponse:
        """A full replacement (validated); updating "default" stores the tenant's own default chain."""
        p = call.principal()
        _admin(p)
        policy = escalation_pb2.EscalationPolicy()
        policy.CopyFrom(request.escalation_policy)
        policies.validate(policy)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(
                select(EscalationPolicyRow).where(EscalationPolicyRow.id == policy.escalation_policy_id)
            )
            if row is None and policy.escalation_policy_id != policies.DEFAULT_ID:
                raise NotFound("escalation_policy", policy.escalation_policy_id)
            if row is not None and policy.etag and policy.etag != str(row.version):
                raise Aborted("the policy changed since it was read; reload and retry")
            policy.etag, policy.built_in = "", False
            if row is None:
                row = EscalationPolicyRow(id=policies.DEFAULT_ID, version=0, payload=b"")
                s.add(row)
            row.version += 1
            row.payload = policy.SerializeToString()
            row.updated_at = datetime.now(UTC)
            await s.commit()
            policy.etag = str(row.version)
        return M.UpdateEscalationPolicyResponse(escalation_policy=policy)

    async def DeleteEscalationPolicy(
        self, request: M.DeleteEscalationPolicyRequest, context: Ctx
    ) -> M.DeleteEscalationPolicyResponse:
        """Deleting the tenant's "default" restores the built-in chain; running chains keep their copy."""
        p = call.principal()
        _admin(p)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(
                select(EscalationPolicyRow).where(EscalationPolicyRow.id == request.escalation_policy_id)
            )
            if row is None:
                raise NotFound("escalation_policy", request.escalation_policy_id)
            await s.delete(row)
            await s.commit()
        return M.DeleteEscalationPolicyResponse()

    # ---- tenant settings ----------------------------------------------------

    async def GetNotifySettings(
        self, request: M.GetNotifySettingsRequest, context: Ctx
    ) -> M.GetNotifySettingsResponse:
        p = call.principal()
        _admin(p, reads_for_services=True)
        async with self.rt.db.session(p.tenant) as s:
            stored, version = await tenant_settings.load(s)
        out = tenant_settings.filled(stored)
        out.etag = str(version)
        return M.GetNotifySettingsResponse(settings=out)

    async def UpdateNotifySettings(
        self, request: M.UpdateNotifySettingsRequest, context: Ctx
    ) -> M.UpdateNotifySettingsResponse:
        p = call.principal()
        _admin(p)
        async with self.rt.db.session(p.tenant) as s:
            stored, version = await tenant_settings.load(s)
            if request.settings.etag and request.settings.etag != str(version):
                raise Aborted("the settings changed since they were read; reload and retry")
            merged = settings_pb2.NotifySettings()
            if stored is not None:
                merged.CopyFrom(stored)
            paths = list(request.update_mask.paths)
            if not paths:
                merged.CopyFrom(request.settings)
            for path in paths:
                name = path.split(".")[0]
                if name not in settings_pb2.NotifySettings.DESCRIPTOR.fields_by_name or name in (
                    "etag",
                    "audit",
                ):
                    raise InvalidArgument.field("update_mask", f"unknown field {path!r}")
                merged.ClearField(name)  # type: ignore[arg-type]
                field = settings_pb2.NotifySettings.DESCRIPTOR.fields_by_name[name]
                value = getattr(request.settings, name)
                if field.is_repeated:
                    getattr(merged, name).extend(value)
                elif field.message_type is not None:
                    getattr(merged, name).CopyFrom(value)
                else:
                    setattr(merged, name, value)
            merged.etag = ""
            tenant_settings.validate(merged)
            row = await s.scalar(select(SettingsRow))
            if row is None:
                row = SettingsRow(version=0, payload=b"")
                s.add(row)
            row.version += 1
            row.payload = merged.SerializeToString()
            row.updated_at = datetime.now(UTC)
            await s.commit()
            out = tenant_settings.filled(merged)
            out.etag = str(row.version)
        return M.UpdateNotifySettingsResponse(settings=out)

    # ---- subscribers --------------------------------------------------------

    async def BatchUpsertSubscribers(
        self, request: M.BatchUpsertSubscribersRequest, context: Ctx
    ) -> M.BatchUpsertSubscribersResponse:
        p = call.principal()
        _admin(p, reads_for_services=True)
        results = []
        now = datetime.now(UTC)
        async with self.rt.db.session(p.tenant) as s:
            for sub in request.subscribers:
                if not sub.user_id or not sub.display_name:
                    raise InvalidArgument.field(
                        "subscribers.user_id", "user_id and display_name are required"
                    )
                row = await s.scalar(select(SubscriberRow).where(SubscriberRow.user_id == sub.user_id))
                created = row is None
                if row is None:
                    row = SubscriberRow(user_id=sub.user_id, version=0)
                    s.add(row)
                _fill_subscriber(row, sub, now)
                results.append(M.BatchUpsertSubscriberResult(user_id=sub.user_id, created=created))
            await s.commit()
        return M.BatchUpsertSubscribersResponse(results=results)

    async def ListSubscribers(
        self, request: M.ListSubscribersRequest, context: Ctx
    ) -> M.ListSubscribersResponse:
        p = call.principal()
        _admin(p, reads_for_services=True)
        size = 100 if request.page_size <= 0 else min(request.page_size, 500)
        query = select(SubscriberRow)
        if request.org_unit_path:
            unit = request.org_unit_path.strip("/")
            if request.include_descendants:
                query = query.where(
                    (SubscriberRow.org_unit_path == unit) | SubscriberRow.org_unit_path.startswith(unit + "/")
                )
            else:
                query = query.where(SubscriberRow.org_unit_path == unit)
        if request.HasField("active"):
            query = query.where(SubscriberRow.active.is_(request.active.value))
        if request.display_name_query:
            query = query.where(SubscriberRow.display_name.contains(request.display_name_query))
        if request.page_token:
            query = query.where(SubscriberRow.user_id > request.page_token)
        async with self.rt.db.session(p.tenant) as s:
            rows = list(await s.scalars(query.order_by(SubscriberRow.user_id).limit(size * 4 + 1)))
        if request.role:
            role = convert.role_name(request.role)
            rows = [r for r in rows if role in r.roles.split(",")]
        more = len(rows) > size
        rows = rows[:size]
        return M.ListSubscribersResponse(
            subscribers=[_subscriber(r) for r in rows], next_page_token=rows[-1].user_id if more else ""
        )

    async def UpdateSubscriber(
        self, request: M.UpdateSubscriberRequest, context: Ctx
    ) -> M.UpdateSubscriberResponse:
        p = call.principal()
        _admin(p, reads_for_services=True)
        sub = request.subscriber
        if not sub.user_id or not sub.display_name:
            raise InvalidArgument.field("subscriber", "user_id and display_name are required")
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(select(SubscriberRow).where(SubscriberRow.user_id == sub.user_id))
            if row is None:
                if not request.allow_missing:
                    raise NotFound("subscriber", sub.user_id)
                row = SubscriberRow(user_id=sub.user_id, version=0)
                s.add(row)
            elif sub.etag and sub.etag != str(row.version):
                raise Aborted("the subscriber changed since it was read; reload and retry")
            _fill_subscriber(row, sub, datetime.now(UTC))
            await s.commit()
            return M.UpdateSubscriberResponse(subscriber=_subscriber(row))

    async def DeleteSubscriber(
        self, request: M.DeleteSubscriberRequest, context: Ctx
    ) -> M.DeleteSubscriberResponse:
        p = call.principal()
        _admin(p)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(select(SubscriberRow).where(SubscriberRow.user_id == request.user_id))
            if row is None:
                raise NotFound("subscriber", request.user_id)
            await s.delete(row)
            await s.commit()
        return M.DeleteSubscriberResponse()

    async def GetSubscriber(self, request: M.GetSubscriberRequest, context: Ctx) -> M.GetSubscriberResponse:
        p = call.principal()
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(select(SubscriberRow).where(SubscriberRow.user_id == request.user_id))
        if row is None:
            raise NotFound("subscriber", request.user_id)
        sub = _subscriber(row)
        if not (p.is_admin or p.is_service or p.user_id == row.user_id):
            sub.phone = sub.phone[:3] + "****" + sub.phone[-4:] if sub.phone else ""
            sub.email = "***" + sub.email[sub.email.find("@") :] if "@" in sub.email else ""
        return M.GetSubscriberResponse(subscriber=sub)

    async def ResolveRecipients(
        self, request: M.ResolveRecipientsRequest, context: Ctx
    ) -> M.ResolveRecipientsResponse:
        p = call.principal()
        _admin(p, reads_for_services=True)
        out = M.ResolveRecipientsResponse()
        seen: dict[str, None] = {}
        async with self.rt.db.session(p.tenant) as s:
            for r in request.recipients:
                users = await sending.resolve(s, [r])
                out.resolved.append(M.ResolvedRecipient(recipient=r, user_ids=users))
                seen.update(dict.fromkeys(users))
        out.user_ids[:] = list(seen)
        return out


def _device_out(d: subscriber_pb2.Device) -> subscriber_pb2.Device:
    """Push tokens are write-only."""
    out = subscriber_pb2.Device()
    out.CopyFrom(d)
    value = out.push_token.value
    out.push_token.Clear()
    out.push_token.set = bool(value)
    out.push_token.hint = value[-4:] if len(value) > 8 else ""
    return out


def _fill_subscriber(row: SubscriberRow, sub: subscriber_pb2.Subscriber, now: datetime) -> None:
    row.display_name = sub.display_name
    row.org_unit_path = sub.org_unit_path.strip("/")
    row.roles = ",".join(convert.role_name(r) for r in sub.roles)
    row.active = sub.active
    row.phone, row.email = sub.phone, sub.email
    row.wecom_user_id, row.dingtalk_user_id = sub.wecom_user_id, sub.dingtalk_user_id
    row.version = (row.version or 0) + 1
    row.updated_at = now


def _subscriber(row: SubscriberRow) -> subscriber_pb2.Subscriber:
    return subscriber_pb2.Subscriber(
        user_id=row.user_id,
        display_name=row.display_name,
        org_unit_path=row.org_unit_path,
        roles=[convert.role_enum(r) for r in row.roles.split(",") if r],  # type: ignore[misc]
        active=row.active,
        phone=row.phone,
        email=row.email,
        wecom_user_id=row.wecom_user_id,
        dingtalk_user_id=row.dingtalk_user_id,
        etag=str(row.version),
    )


def _validate_template(t: template_pb2.Template) -> None:
    if not t.category:
        raise InvalidArgument.field("template.category", "required")
    try:
        validate(template_store.spec_from_proto(t))
    except TemplateError as exc:
        raise InvalidArgument(str(exc), sending._violations(exc)) from None


def _check_preference(pref: preference_pb2.Preference) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from kit.errors import Violations

    v = Violations()
    if pref.locale and pref.locale not in LOCALES:
        v.add("preference.locale", f"one of {', '.join(LOCALES)}")
    if pref.time_zone:
        try:
            ZoneInfo(pref.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            v.add("preference.time_zone", "not an IANA time zone")
    q = pref.quiet_hours
    if q.enabled:
        for name, t in (("start_time", q.start_time), ("end_time", q.end_time)):
            if not (0 <= t.hours < 24 and 0 <= t.minutes < 60):
                v.add(f"preference.quiet_hours.{name}", "a time of day")
        if (q.start_time.hours, q.start_time.minutes) == (q.end_time.hours, q.end_time.minutes):
            v.add("preference.quiet_hours.end_time", "must differ from start_time")
    v.raise_if_any("invalid preference")
    effective(pref)  # parses cleanly
    _ = QuietWindow


_SECRET_PATHS = (
    ("sms", "access_key_secret"),
    ("email", "password"),
    ("wecom_bot", "webhook_key"),
    ("dingtalk_bot", "access_token"),
    ("dingtalk_bot", "signing_secret"),
    ("webhook", "signing_secret"),
    ("mobile_push", "credentials"),
)


def _redacted(cfg: channel_config_pb2.ChannelConfig) -> channel_config_pb2.ChannelConfig:
    """Secrets are write-only: responses say whether one is set and show its last characters."""
    out = channel_config_pb2.ChannelConfig()
    out.CopyFrom(cfg)
    for group, name in _SECRET_PATHS:
        if out.WhichOneof("settings") != group:
            continue
        secret = getattr(getattr(out, group), name)
        value = secret.value
        secret.Clear()
        if value:
            secret.set = True
            secret.hint = value[-4:] if len(value) > 8 else ""
    return out


_CONFIG_FIELDS = ("display_name", "enabled", "is_default", "org_unit_path", "retry_policy")
_SETTINGS = ("sms", "email", "wecom_bot", "dingtalk_bot", "webhook", "mobile_push")


def _merge_channel_config(
    current: channel_config_pb2.ChannelConfig, incoming: channel_config_pb2.ChannelConfig, paths: list[str]
) -> channel_config_pb2.ChannelConfig:
    """Apply the masked fields; a secret left empty in the update keeps its stored value."""
    merged = channel_config_pb2.ChannelConfig()
    merged.CopyFrom(current)
    kind = current.WhichOneof("settings") or ""
    for path in paths or [*_CONFIG_FIELDS, kind]:
        root = path.split(".")[0]
        if root in ("channel", "channel_config_id"):
            raise InvalidArgument.field(f"update_mask.{path}", "immutable")
        if root not in (*_CONFIG_FIELDS, *_SETTINGS):
            raise InvalidArgument.field("update_mask", f"unknown field {path!r}")
        if root in _SETTINGS:
            if root != kind:
                raise InvalidArgument.field(
                    f"channel_config.{root}", f"this configuration holds {kind} settings"
                )
            new = getattr(incoming, root)
            kept = channel_config_pb2.ChannelConfig()
            kept.CopyFrom(merged)
            getattr(merged, root).CopyFrom(new)
            for group, name in _SECRET_PATHS:
                if group == root and not getattr(new, name).value:
                    getattr(getattr(merged, root), name).CopyFrom(getattr(getattr(kept, root), name))
        elif root == "retry_policy":
            merged.retry_policy.CopyFrom(incoming.retry_policy)
        else:
            setattr(merged, root, getattr(incoming, root))
    return merged


def _check_channel_config(cfg: channel_config_pb2.ChannelConfig) -> None:
    from kit.errors import Violations

    v = Violations()
    if not cfg.display_name.strip():
        v.add("channel_config.display_name", "required")
    expected = {
        notification_pb2.CHANNEL_SMS: "sms",
        notification_pb2.CHANNEL_EMAIL: "email",
        notification_pb2.CHANNEL_WECOM_BOT: "wecom_bot",
        notification_pb2.CHANNEL_DINGTALK_BOT: "dingtalk_bot",
        notification_pb2.CHANNEL_WEBHOOK: "webhook",
        notification_pb2.CHANNEL_MOBILE_PUSH: "mobile_push",
    }.get(cfg.channel)
    if expected is None:
        v.add("channel_config.channel", "an external channel is required")
    elif cfg.WhichOneof("settings") != expected:
        v.add(f"channel_config.{expected}", f"settings for {expected} are required")
    if cfg.WhichOneof("settings") == "webhook" and not cfg.webhook.url.startswith(
        ("https://", "http://127.0.0.1", "http://localhost")
    ):
        v.add("channel_config.webhook.url", "https only (http for localhost)")
    if cfg.WhichOneof("settings") == "email" and (not cfg.email.host or "@" not in cfg.email.from_address):
        v.add("channel_config.email", "host and from_address are required")
    v.raise_if_any("invalid channel configuration")


def registrations(rt: Runtime) -> list[Registration]:
    return [
        Registration(
            notify_service_pb2_grpc.add_NotifyServiceServicer_to_server,
            # RPCs not built yet are abstract in the stubs and answer UNIMPLEMENTED at run time.
            NotifyServiceApi(rt),  # type: ignore[abstract]
            notify_service_pb2.DESCRIPTOR.services_by_name["NotifyService"].full_name,
        ),
        diagnostics.registration("notify"),
    ]


_ = types_pb2
