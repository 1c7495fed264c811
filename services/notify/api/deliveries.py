"""External deliveries (admin; reads also for services): list, get, resend, receipts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kit.errors import InvalidArgument, NotFound, SalesopsError
from kit.grpc import context as call
from kit.grpc.errors import to_status_proto
from kit.resources import PageRequest, UnitOfWork
from services.notify import deliveries
from services.notify.api.base import ApiBase, Ctx, M, admin_only, sender_only
from services.notify.presenters import DELIVERY
from services.notify.repositories.deliveries import DeliveryRepository
from services.notify.repositories.notifications import NotificationRepository
from services.notify.store import DeliveryRow


async def _one(uow: UnitOfWork, notification_id: str, delivery_id: str) -> DeliveryRow:
    row = await DeliveryRepository(uow).find(delivery_id)
    if row is None or (notification_id != "-" and row.notification_id != notification_id):
        raise NotFound("delivery", delivery_id)
    return row


def _resend_one(delivery_id: str) -> Callable[[UnitOfWork], Awaitable[DeliveryRow]]:
    async def work(uow: UnitOfWork) -> DeliveryRow:
        return await deliveries.resend(uow, "-", delivery_id, force=False)

    return work


class DeliveriesApi(ApiBase):
    async def RecordDeliveryReceipts(
        self, request: M.RecordDeliveryReceiptsRequest, context: Ctx
    ) -> M.RecordDeliveryReceiptsResponse:
        p = call.principal()
        sender_only(p)
        if not 1 <= len(request.receipts) <= 500:
            raise InvalidArgument.field("receipts", "1 to 500 receipts")
        matched, unmatched = await self.tx.run(
            p.tenant, lambda uow: deliveries.record_receipts(uow, list(request.receipts))
        )
        return M.RecordDeliveryReceiptsResponse(
            matched_count=matched, unmatched_provider_message_ids=unmatched
        )

    async def ListDeliveries(
        self, request: M.ListDeliveriesRequest, context: Ctx
    ) -> M.ListDeliveriesResponse:
        p = call.principal()
        admin_only(p, reads_for_services=True)
        page = PageRequest.parse(request.page_size, request.page_token, default=100, maximum=500)
        async with self.tx.read(p.tenant) as uow:
            notification_id = request.notification_id or "-"
            if notification_id != "-":
                await NotificationRepository(uow).get(notification_id)  # NOT_FOUND for an unknown one
            found = await DeliveryRepository(uow).page(notification_id, request.filter, page)
        return M.ListDeliveriesResponse(
            deliveries=[DELIVERY.present(p, r) for r in found.items],
            next_page_token=found.next_page_token,
            total_size=found.total_size or 0,
        )

    async def BatchResendDeliveries(
        self, request: M.BatchResendDeliveriesRequest, context: Ctx
    ) -> M.BatchResendDeliveriesResponse:
        p = call.principal()
        admin_only(p)
        if not 1 <= len(request.delivery_ids) <= 100:
            raise InvalidArgument.field("delivery_ids", "1 to 100 deliveries")
        results = []
        for delivery_id in request.delivery_ids:
            try:  # each stands alone, in its own unit of work
                row = await self.tx.run(p.tenant, _resend_one(delivery_id))
                results.append(
                    M.BatchResendResult(delivery_id=delivery_id, delivery=DELIVERY.present(p, row))
                )
            except SalesopsError as exc:
                results.append(
                    M.BatchResendResult(delivery_id=delivery_id, error=to_status_proto(exc, "notify"))
                )
        return M.BatchResendDeliveriesResponse(results=results)

    async def ResendDelivery(
        self, request: M.ResendDeliveryRequest, context: Ctx
    ) -> M.ResendDeliveryResponse:
        p = call.principal()
        admin_only(p)
        row = await self.tx.run(
            p.tenant,
            lambda uow: deliveries.resend(
                uow, request.notification_id, request.delivery_id, force=request.force
            ),
        )
        return M.ResendDeliveryResponse(delivery=DELIVERY.present(p, row))

    async def GetDelivery(self, request: M.GetDeliveryRequest, context: Ctx) -> M.GetDeliveryResponse:
        p = call.principal()
        admin_only(p, reads_for_services=True)
        async with self.tx.read(p.tenant) as uow:
            row = await _one(uow, request.notification_id, request.delivery_id)
        return M.GetDeliveryResponse(delivery=DELIVERY.present(p, row))
