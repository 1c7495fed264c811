"""Templates (admin; reads also for services): tenant overrides beside the built-ins; preview."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.json_format import MessageToDict
from ulid import ULID

from kit.grpc import context as call
from kit.resources import PageRequest
from salesops.notify.v1 import notification_pb2, template_pb2
from services.notify import template_store, templates
from services.notify.api.base import ApiBase, Ctx, M, admin_only
from services.notify.domain.templates import context as template_context


class TemplatesApi(ApiBase):
    async def CreateTemplate(
        self, request: M.CreateTemplateRequest, context: Ctx
    ) -> M.CreateTemplateResponse:
        p = call.principal()
        admin_only(p)
        template_id = request.template.template_id or str(ULID())
        saved = await self.tx.run(p.tenant, lambda uow: templates.create(uow, request.template, template_id))
        return M.CreateTemplateResponse(template=saved)

    async def GetTemplate(self, request: M.GetTemplateRequest, context: Ctx) -> M.GetTemplateResponse:
        p = call.principal()
        admin_only(p, reads_for_services=True)  # the admin section of the contract
        async with self.tx.read(p.tenant) as uow:
            return M.GetTemplateResponse(template=await templates.get(uow, request.template_id))

    async def ListTemplates(self, request: M.ListTemplatesRequest, context: Ctx) -> M.ListTemplatesResponse:
        p = call.principal()
        admin_only(p, reads_for_services=True)
        page = PageRequest.parse(request.page_size, request.page_token, default=100, maximum=500)
        async with self.tx.read(p.tenant) as uow:
            found = await templates.listing(uow, request.filter, page)
        return M.ListTemplatesResponse(
            templates=found.items, next_page_token=found.next_page_token, total_size=found.total_size or 0
        )

    async def UpdateTemplate(
        self, request: M.UpdateTemplateRequest, context: Ctx
    ) -> M.UpdateTemplateResponse:
        p = call.principal()
        admin_only(p)
        saved = await self.tx.run(
            p.tenant, lambda uow: templates.update(uow, request.template, request.update_mask)
        )
        return M.UpdateTemplateResponse(template=saved)

    async def DeleteTemplate(
        self, request: M.DeleteTemplateRequest, context: Ctx
    ) -> M.DeleteTemplateResponse:
        p = call.principal()
        admin_only(p)
        await self.tx.run(p.tenant, lambda uow: templates.delete(uow, request.template_id))
        return M.DeleteTemplateResponse()

    async def PreviewTemplate(
        self, request: M.PreviewTemplateRequest, context: Ctx
    ) -> M.PreviewTemplateResponse:
        p = call.principal()
        admin_only(p, reads_for_services=True)  # the admin section of the contract
        if request.WhichOneof("source") == "draft":
            templates.check(request.draft)
            t = request.draft
        else:
            async with self.tx.read(p.tenant) as uow:
                t = await templates.get(uow, request.template_id)
        values: dict[str, Any] = {
            v.name: MessageToDict(v.example) if v.HasField("example") else f"<{v.name}>" for v in t.variables
        }
        values.update(MessageToDict(request.variables))
        now = datetime.now(UTC)
        ctx = template_context(
            values, recipient_name=request.recipient_user_id or p.user_id, due_time=now, now=now
        )
        rendered = await template_store.render_off_loop(template_store.spec_from_proto(t), ctx)
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
