"""Notify's directory of subscribers and recipient resolution."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from kit.errors import (
    Aborted,
    InvalidArgument,
    NotFound,
)
from kit.grpc import context as call
from salesops.notify.v1 import (
    subscriber_pb2,
)
from services.notify import (
    convert,
    sending,
)
from services.notify.api.base import ApiBase, Ctx, M
from services.notify.api.base import admin_only as _admin
from services.notify.presenters import SUBSCRIBER
from services.notify.store import (
    SubscriberRow,
)


class SubscribersApi(ApiBase):
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
            subscribers=[SUBSCRIBER.present(p, r) for r in rows],
            next_page_token=rows[-1].user_id if more else "",
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
            return M.UpdateSubscriberResponse(subscriber=SUBSCRIBER.present(p, row))

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
        user_id = p.user_id if request.user_id in ("", "me") else request.user_id
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(select(SubscriberRow).where(SubscriberRow.user_id == user_id))
        if row is None:
            raise NotFound("subscriber", user_id)
        sub = SUBSCRIBER.present(p, row)
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


def _fill_subscriber(row: SubscriberRow, sub: subscriber_pb2.Subscriber, now: datetime) -> None:
    row.display_name = sub.display_name
    row.org_unit_path = sub.org_unit_path.strip("/")
    row.roles = ",".join(convert.role_name(r) for r in sub.roles)
    row.active = sub.active
    row.phone, row.email = sub.phone, sub.email
    row.wecom_user_id, row.dingtalk_user_id = sub.wecom_user_id, sub.dingtalk_user_id
    row.version = (row.version or 0) + 1
    row.updated_at = now
