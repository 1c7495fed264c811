"""External links: create, list, delete (admins; reps' own links need pipeline's visibility, not built)."""

from __future__ import annotations

from kit.grpc import context as call
from kit.resources import PageRequest
from salesops.integration.v1 import integration_service_pb2 as pb
from services.integration import links
from services.integration.access import require_admin
from services.integration.api.base import ApiBase, Ctx, now
from services.integration.presenters import present_link
from services.integration.repositories.links import ExternalLinks


class LinksApi(ApiBase):
    async def CreateExternalLink(
        self, request: pb.CreateExternalLinkRequest, context: Ctx
    ) -> pb.CreateExternalLinkResponse:
        who = call.principal()
        require_admin(who)
        at = now()
        row = await self.write(who, lambda uow: links.create_link(uow, who, request.link, at))
        return pb.CreateExternalLinkResponse(link=present_link(row))

    async def ListExternalLinks(
        self, request: pb.ListExternalLinksRequest, context: Ctx
    ) -> pb.ListExternalLinksResponse:
        who = call.principal()
        require_admin(who)
        page = PageRequest.parse(request.page_size, request.page_token)
        async with self.read(who) as uow:
            found = await ExternalLinks(uow).page(
                request.deal_id, request.customer_id, request.connector_id, request.external_id, page
            )
        return pb.ListExternalLinksResponse(
            links=[present_link(r) for r in found.items], next_page_token=found.next_page_token
        )

    async def DeleteExternalLink(
        self, request: pb.DeleteExternalLinkRequest, context: Ctx
    ) -> pb.DeleteExternalLinkResponse:
        who = call.principal()
        require_admin(who)
        await self.write(who, lambda uow: links.delete_link(uow, request.link_id))
        return pb.DeleteExternalLinkResponse()
