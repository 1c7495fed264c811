"""Notify's directory of subscribers (admin and directory sync) and recipient resolution."""

from __future__ import annotations

from kit.grpc import context as call
from kit.resources import PageRequest
from services.notify import directory, subscribers
from services.notify.api.base import ApiBase, Ctx, M, admin_only
from services.notify.presenters import SUBSCRIBER


class SubscribersApi(ApiBase):
    async def BatchUpsertSubscribers(
        self, request: M.BatchUpsertSubscribersRequest, context: Ctx
    ) -> M.BatchUpsertSubscribersResponse:
        p = call.principal()
        admin_only(p, reads_for_services=True)
        done = await self.tx.run(
            p.tenant, lambda uow: subscribers.upsert_many(uow, list(request.subscribers))
        )
        return M.BatchUpsertSubscribersResponse(
            results=[M.BatchUpsertSubscriberResult(user_id=u, created=c) for u, c in done]
        )

    async def ListSubscribers(
        self, request: M.ListSubscribersRequest, context: Ctx
    ) -> M.ListSubscribersResponse:
        p = call.principal()
        admin_only(p, reads_for_services=True)
        page = PageRequest.parse(request.page_size, request.page_token, default=100, maximum=500)
        async with self.tx.read(p.tenant) as uow:
            found = await subscribers.listing(uow, request, page)
        return M.ListSubscribersResponse(
            subscribers=[SUBSCRIBER.present(p, r) for r in found.items],
            next_page_token=found.next_page_token,
            total_size=found.total_size or 0,
        )

    async def UpdateSubscriber(
        self, request: M.UpdateSubscriberRequest, context: Ctx
    ) -> M.UpdateSubscriberResponse:
        p = call.principal()
        admin_only(p, reads_for_services=True)
        row = await self.tx.run(
            p.tenant,
            lambda uow: subscribers.update(uow, request.subscriber, allow_missing=request.allow_missing),
        )
        return M.UpdateSubscriberResponse(subscriber=SUBSCRIBER.present(p, row))

    async def DeleteSubscriber(
        self, request: M.DeleteSubscriberRequest, context: Ctx
    ) -> M.DeleteSubscriberResponse:
        p = call.principal()
        admin_only(p)
        await self.tx.run(p.tenant, lambda uow: subscribers.delete(uow, request.user_id))
        return M.DeleteSubscriberResponse()

    async def GetSubscriber(self, request: M.GetSubscriberRequest, context: Ctx) -> M.GetSubscriberResponse:
        p = call.principal()
        user_id = p.user_id if request.user_id in ("", "me") else request.user_id
        async with self.tx.read(p.tenant) as uow:
            row = await subscribers.get(uow, user_id)
        # Outside the caller's scope the subscriber does not exist (the presenter decides).
        return M.GetSubscriberResponse(subscriber=SUBSCRIBER.present(p, row))

    async def ResolveRecipients(
        self, request: M.ResolveRecipientsRequest, context: Ctx
    ) -> M.ResolveRecipientsResponse:
        p = call.principal()
        admin_only(p, reads_for_services=True)
        out = M.ResolveRecipientsResponse()
        seen: dict[str, None] = {}
        async with self.tx.read(p.tenant) as uow:
            for r in request.recipients:
                users = await directory.resolve(uow.session, [r])
                out.resolved.append(M.ResolvedRecipient(recipient=r, user_ids=users))
                seen.update(dict.fromkeys(users))
        out.user_ids[:] = list(seen)
        return out
