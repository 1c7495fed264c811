"""Send, get, acknowledge, list and cancel notifications."""

from __future__ import annotations

import contextlib

from sqlalchemy import select

from kit.errors import (
    InvalidArgument,
    NotFound,
    SalesopsError,
)
from kit.grpc import context as call
from salesops.notify.v1 import (
    notification_pb2,
)
from services.notify import (
    cancelling,
    convert,
    deliveries,
    escalation,
    live,
    sending,
)
from services.notify.api.base import ApiBase, Ctx, M
from services.notify.api.base import admin_only as _admin
from services.notify.api.base import sender_only as _sender
from services.notify.store import (
    InboxItemRow,
    NotificationRow,
)


class NotificationsApi(ApiBase):
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
