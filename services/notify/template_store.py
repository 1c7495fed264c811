"""Template lookup (tenant override, else built-in) and Template proto <-> TemplateSpec."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from google.protobuf.json_format import MessageToDict
from sqlalchemy.ext.asyncio import AsyncSession

from kit.errors import FieldViolation, InvalidArgument
from salesops.notify.v1 import template_pb2
from services.notify import read_memo
from services.notify.convert import category_enum, category_key
from services.notify.domain.templates import (
    BUILT_INS,
    Rendered,
    TemplateError,
    TemplateSpec,
    Variable,
    render,
)
from services.notify.repositories import on_session
from services.notify.repositories.configuration import TemplateRepository

_TYPE_PREFIX = "VARIABLE_TYPE_"


def spec_from_proto(t: template_pb2.Template, *, built_in: bool = False) -> TemplateSpec:
    variables = tuple(
        Variable(
            v.name,
            template_pb2.VariableType.Name(v.type)[len(_TYPE_PREFIX) :].lower() if v.type else "",
            v.required,
        )
        for v in t.variables
    )
    category = category_key(t.category) if t.category else ""
    return TemplateSpec(t.template_key, t.locale, category, t.title, t.body, variables, built_in)


def proto_from_spec(spec: TemplateSpec) -> template_pb2.Template:
    return template_pb2.Template(
        template_id=f"builtin.{spec.key}.{spec.locale}" if spec.built_in else "",
        template_key=spec.key,
        locale=spec.locale,
        category=category_enum(spec.category),  # type: ignore[arg-type]
        display_name=spec.key,
        built_in=spec.built_in,
        title=spec.title,
        body=spec.body,
        variables=[
            template_pb2.TemplateVariable(
                name=v.name,
                type=template_pb2.VariableType.Value(_TYPE_PREFIX + v.type.upper()),  # type: ignore[arg-type]
                required=v.required,
            )
            for v in spec.variables
        ],
    )


async def find(session: AsyncSession, key: str, locale: str) -> TemplateSpec | None:
    """The tenant's template for the key and locale, else the built-in one (once per consumer
    transaction: read_memo)."""

    async def read() -> TemplateSpec | None:
        row = await TemplateRepository(on_session(session)).by_key(key, locale)
        if row is not None:
            return spec_from_proto(template_pb2.Template.FromString(row.payload))
        return BUILT_INS.get((key, locale))

    return await read_memo.once(session, ("template", key, locale), read)


def as_json(t: template_pb2.Template) -> dict[str, object]:
    return MessageToDict(t)


# Sources up to this size render inline; larger ones in a worker thread, so the event
# loop keeps serving other calls (rendering is linear and bounded, but not free).
INLINE_RENDER_MAX = 4_096


async def render_off_loop(
    spec: TemplateSpec, values: Mapping[str, Any], *, time_zone: str = "Asia/Shanghai"
) -> Rendered:
    """Render for a response: INVALID_ARGUMENT with field violations when it cannot be rendered."""
    try:
        if len(spec.title) + len(spec.body) <= INLINE_RENDER_MAX:
            return render(spec, values, time_zone=time_zone)
        return await asyncio.to_thread(render, spec, values, time_zone=time_zone)
    except TemplateError as exc:
        raise InvalidArgument(str(exc), violations(exc)) from None


def violations(exc: TemplateError) -> list[FieldViolation]:
    return [FieldViolation(f, d) for f, d in exc.problems]
