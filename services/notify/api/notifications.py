"""Send, get, acknowledge, list and cancel notifications."""

from __future__ import annotations

import contextlib

from kit.auth import Principal
from kit.errors import InvalidArgument, SalesopsError
from kit.grpc import context as call
from kit.grpc.errors import to_status_proto
from kit.resources import PageRequest, UnitOfWork
from salesops.notify.v1 import notification_pb2
from services.notify import convert, escalation, live, notifications, sending
from services.notify.api.base import ApiBase, Ctx, M, admin_only, sender_only
from services.notify.presenters import INBOX_ITEM, NOTIFICATION
from services.notify.store import InboxItemRow


class NotificationsApi(ApiBase):
    async def _send(self, p: Principal, n: notification_pb2.Notification) -> sending.SendOutcome:
        """One send in one unit of work; open streams told and the escalation chain started after it commits."""
        source = notification_pb2.NotificationSource(service="admin" if p.is_admin else p.user_id)

        async def work(uow: UnitOfWork) -> sending.SendOutcome:
            outcome = await self.sender.send(
                p.tenant, n, is_admin=p.is_admin, source=source, session=uow.session
            )
            uow.after_commit(lambda: self._sent(p.tenant, outcome))
            return outcome

        return await self.tx.run(p.tenant, work)

    async def _sent(self, tenant: str, outcome: sending.SendOutcome) -> None:
        await self.sender.announce(tenant, outcome)
        if outcome.notification.escalation.state == notification_pb2.ESCALATION_STATE_AWAITING_ACK:
            await escalation.start_quietly(self.rt, tenant, outcome.notification.notification_id)

    async def SendNotification(
        self, request: M.SendNotificationRequest, context: Ctx
    ) -> M.SendNotificationResponse:
        p = call.principal()
        sender_only(p)
        outcome = await self._send(p, request.notification)
        return M.SendNotificationResponse(
            notification=NOTIFICATION.present(p, outcome.notification), deduplicated=outcome.deduplicated
        )

    async def GetNotification(
        self, request: M.GetNotificationRequest, context: Ctx
    ) -> M.GetNotificationResponse:
        p = call.principal()
        async with self.tx.read(p.tenant) as uow:
            n = await notifications.get(uow, p, request.notification_id)
        return M.GetNotificationResponse(notification=NOTIFICATION.present(p, n))

    async def AcknowledgeNotification(
        self, request: M.AcknowledgeNotificationRequest, context: Ctx
    ) -> M.AcknowledgeNotificationResponse:
        p = call.principal()
        nid = request.notification_id

        async def work(uow: UnitOfWork) -> notification_pb2.Notification:
            n = await escalation.acknowledge(uow, nid, p.user_id, request.channel)
            uow.after_commit(lambda: escalation.signal_acknowledged(self.rt, p.tenant, nid, p.user_id))
            return n

        n = await self.tx.run(p.tenant, work)
        return M.AcknowledgeNotificationResponse(notification=NOTIFICATION.present(p, n))

    async def BatchSendNotifications(
        self, request: M.BatchSendNotificationsRequest, context: Ctx
    ) -> M.BatchSendNotificationsResponse:
        p = call.principal()
        sender_only(p)
        if not 1 <= len(request.requests) <= 100:
            raise InvalidArgument.field("requests", "1 to 100 sends per batch")
        results = []
        for one in request.requests:
            try:  # each item stands alone, in its own unit of work: one bad notification fails only itself
                outcome = await self._send(p, one.notification)
            except SalesopsError as exc:
                results.append(M.BatchSendResult(error=to_status_proto(exc, "notify")))
                continue
            results.append(
                M.BatchSendResult(
                    notification=NOTIFICATION.present(p, outcome.notification),
                    deduplicated=outcome.deduplicated,
                )
            )
        return M.BatchSendNotificationsResponse(results=results)

    async def ListNotifications(
        self, request: M.ListNotificationsRequest, context: Ctx
    ) -> M.ListNotificationsResponse:
        p = call.principal()
        admin_only(p, reads_for_services=True)
        page = PageRequest.parse(request.page_size, request.page_token, default=50, maximum=200)
        async with self.tx.read(p.tenant) as uow:
            found = await notifications.listing(uow, request.filter, page)
        return M.ListNotificationsResponse(
            notifications=[NOTIFICATION.present(p, convert.notification(r)) for r in found.items],
            next_page_token=found.next_page_token,
            total_size=found.total_size or 0,
        )

    async def CancelNotification(
        self, request: M.CancelNotificationRequest, context: Ctx
    ) -> M.CancelNotificationResponse:
        p = call.principal()
        sender_only(p)

        async def work(uow: UnitOfWork) -> notification_pb2.Notification:
            n, items = await notifications.cancel(uow, request.notification_id, request.reason)
            uow.after_commit(lambda: self._tell_items(p.tenant, items))
            return n

        n = await self.tx.run(p.tenant, work)
        return M.CancelNotificationResponse(notification=NOTIFICATION.present(p, n))

    async def CancelMatchingNotifications(
        self, request: M.CancelMatchingNotificationsRequest, context: Ctx
    ) -> M.CancelMatchingNotificationsResponse:
        p = call.principal()
        sender_only(p)
        if not request.dedupe_key and not request.subject.id:
            raise InvalidArgument.field("dedupe_key", "a dedupe key or a subject is required")

        async def work(uow: UnitOfWork) -> list[str]:
            ids, items = await notifications.cancel_matching(uow, request)
            uow.after_commit(lambda: self._tell_items(p.tenant, items))
            return ids

        ids = await self.tx.run(p.tenant, work)
        return M.CancelMatchingNotificationsResponse(notification_ids=ids)

    async def _tell_items(self, tenant: str, items: list[InboxItemRow]) -> None:
        events = [
            (tenant, i.user_id, M.StreamInboxResponse(cursor=i.id, item_updated=INBOX_ITEM.for_owner(i)))
            for i in items
        ]
        with contextlib.suppress(Exception):  # committed; streams resync on reconnect
            await live.publish(self.rt.redis, events)
