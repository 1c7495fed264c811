"""Template use cases: a tenant's own templates beside the read-only built-ins."""

from __future__ import annotations

from google.protobuf.field_mask_pb2 import FieldMask

from kit.errors import AlreadyExists, InvalidArgument, NotFound
from kit.resources import Page, PageRequest, UnitOfWork, query_key
from salesops.notify.v1 import notify_service_pb2, template_pb2
from services.notify import convert, template_store
from services.notify.documents import Documents
from services.notify.domain.templates import BUILT_INS, TemplateError, built_in_templates, validate
from services.notify.listing import page_in_memory
from services.notify.repositories.configuration import TemplateRepository

BUILT_IN_PREFIX = "builtin."


def check(t: template_pb2.Template) -> None:
    """A template about to be saved or previewed: INVALID_ARGUMENT listing every problem."""
    if not t.category:
        raise InvalidArgument.field("template.category", "required")
    try:
        validate(template_store.spec_from_proto(t))
    except TemplateError as exc:
        raise InvalidArgument(str(exc), template_store.violations(exc)) from None


def _prepare(_stored: template_pb2.Template | None, proposed: template_pb2.Template) -> template_pb2.Template:
    check(proposed)
    return proposed


TEMPLATES = Documents(
    TemplateRepository,
    template_pb2.Template,
    "template_id",
    columns=lambda t: {
        "template_key": t.template_key,
        "locale": t.locale,
        "category": convert.category_key(t.category),
    },
    prepare=_prepare,
    version_field="revision",
)


def _read_only(template_id: str, field: str) -> None:
    if template_id.startswith(BUILT_IN_PREFIX):
        raise InvalidArgument.field(field, "built-in templates are read-only")


async def create(uow: UnitOfWork, t: template_pb2.Template, template_id: str) -> template_pb2.Template:
    _read_only(template_id, "template.template_id")
    if await TemplateRepository(uow).by_key(t.template_key, t.locale) is not None:
        raise AlreadyExists("template", f"{t.template_key}/{t.locale}")
    return await TEMPLATES.create(uow, t, template_id)


async def get(uow: UnitOfWork, template_id: str) -> template_pb2.Template:
    if template_id.startswith(BUILT_IN_PREFIX):
        _, key, locale = template_id.split(".", 2) if template_id.count(".") >= 2 else ("", "", "")
        spec = BUILT_INS.get((key, locale))
        if spec is None:
            raise NotFound("template", template_id)
        return template_store.proto_from_spec(spec)
    return await TEMPLATES.get(uow, template_id)


async def listing(
    uow: UnitOfWork, f: notify_service_pb2.TemplateFilter, page: PageRequest
) -> Page[template_pb2.Template]:
    """Tenant and built-in templates, ordered by key, then locale (then id)."""
    rows = await TemplateRepository(uow).matching([])
    everything = [TEMPLATES.read(r) for r in rows] + [
        template_store.proto_from_spec(b) for b in built_in_templates()
    ]
    wanted = [
        t
        for t in everything
        if (not f.template_key or t.template_key == f.template_key)
        and (not f.locale or t.locale == f.locale)
        and (not f.categories or t.category in f.categories)
        and (not f.HasField("built_in") or t.built_in == f.built_in.value)
    ]
    return page_in_memory(
        uow,
        wanted,
        lambda t: (t.template_key, t.locale, t.template_id),
        page,
        query_key("notify.Template", f),
    )


async def update(uow: UnitOfWork, t: template_pb2.Template, mask: FieldMask) -> template_pb2.Template:
    _read_only(t.template_id, "template.template_id")
    return await TEMPLATES.update(uow, t, mask)


async def delete(uow: UnitOfWork, template_id: str) -> None:
    _read_only(template_id, "template_id")
    await TEMPLATES.delete(uow, template_id)
