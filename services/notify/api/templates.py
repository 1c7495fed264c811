"""Templates: tenant overrides beside the built-ins; preview."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.json_format import MessageToDict
from sqlalchemy import func, select
from ulid import ULID

from kit.auth import Principal
from kit.errors import (
    Aborted,
    AlreadyExists,
    InvalidArgument,
    NotFound,
)
from kit.grpc import context as call
from salesops.notify.v1 import (
    notification_pb2,
    template_pb2,
)
from services.notify import (
    convert,
    sending,
    template_store,
)
from services.notify.api.base import ApiBase, Ctx, M
from services.notify.api.base import admin_only as _admin
from services.notify.domain.templates import TemplateError, validate
from services.notify.domain.templates import context as template_context
from services.notify.store import (
    TemplateRow,
)


class TemplatesApi(ApiBase):
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
        _admin(p, reads_for_services=True)  # the admin section of the contract
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
        _admin(p, reads_for_services=True)  # the admin section of the contract
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
        ctx = template_context(
            values, recipient_name=request.recipient_user_id or p.user_id, due_time=now, now=now
        )
        rendered = await template_store.render_off_loop(spec, ctx)
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


def _validate_template(t: template_pb2.Template) -> None:
    if not t.category:
        raise InvalidArgument.field("template.category", "required")
    try:
        validate(template_store.spec_from_proto(t))
    except TemplateError as exc:
        raise InvalidArgument(str(exc), sending._violations(exc)) from None
