"""External deliveries: list, get, resend, receipts."""

from __future__ import annotations

from sqlalchemy import select

from kit.errors import (
    InvalidArgument,
    NotFound,
    SalesopsError,
)
from kit.grpc import context as call
from services.notify import (
    deliveries,
)
from services.notify.api.base import ApiBase, Ctx, M
from services.notify.api.base import admin_only as _admin
from services.notify.api.base import sender_only as _sender
from services.notify.store import (
    DeliveryRow,
)


class DeliveriesApi(ApiBase):
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
