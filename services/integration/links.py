"""External links: our deal or customer <-> an external record, so mapped events carry our ids. Never commit."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from kit.auth import Principal
from kit.errors import AlreadyExists, FieldViolation, InvalidArgument
from kit.resources import UnitOfWork, sanitize_create
from salesops.integration.v1 import connector_pb2 as c
from services.integration.repositories.connectors import Connectors
from services.integration.repositories.links import ExternalLinks
from services.integration.store import ExternalLinkRow


async def create_link(
    uow: UnitOfWork, who: Principal, incoming: c.ExternalLink, at: datetime
) -> ExternalLinkRow:
    link = sanitize_create(incoming)
    problems: list[FieldViolation] = []
    if not link.link_id or len(link.link_id) > 64:
        problems.append(FieldViolation("link.link_id", "required, at most 64 characters"))
    if not link.WhichOneof("target"):
        problems.append(FieldViolation("link.target", "a deal_id or a customer_id"))
    ext = link.external
    if not ext.connector_id:
        problems.append(FieldViolation("link.external.connector_id", "required"))
    if ext.object_type not in c.ExternalObjectType.values() or not ext.object_type:
        problems.append(FieldViolation("link.external.object_type", "required"))
    if not ext.external_id or len(ext.external_id) > 256:
        problems.append(FieldViolation("link.external.external_id", "required, at most 256 characters"))
    if problems:
        raise InvalidArgument("invalid external link", problems)
    conn = await Connectors(uow).get(ext.connector_id)  # NOT_FOUND: no such connector here
    digest = hashlib.sha256(link.SerializeToString(deterministic=True)).hexdigest()
    repo = ExternalLinks(uow)
    same = await repo.find(link.link_id)
    if same is not None:
        if same.request_digest == digest:
            return same
        raise AlreadyExists("integration.ExternalLink", link.link_id)
    if await repo.of_record(ext.connector_id, ext.object_type, ext.external_id) is not None:
        raise AlreadyExists(
            "integration.ExternalLink", ext.external_id, "this external record is already linked"
        )
    row = ExternalLinkRow(
        link_id=link.link_id,
        connector_id=conn.connector_id,
        object_type=ext.object_type,
        external_id=ext.external_id,
        external_number=ext.external_number,
        deal_id=link.deal_id,
        customer_id=link.customer_id,
        origin=c.LINK_ORIGIN_MANUAL,
        created_at=at,
        created_by=who.user_id,
        request_digest=digest,
    )
    return await repo.add(row)


async def delete_link(uow: UnitOfWork, link_id: str) -> None:
    repo = ExternalLinks(uow)
    row = await repo.get(link_id)
    await uow.session.delete(row)
    await uow.session.flush()


async def resolve(uow: UnitOfWork, event: Any, *refs: c.ExternalReference) -> None:
    """Fill the event's deal / customer from the first linked reference, when the sender did not name them."""
    if event.deal_id:
        return
    repo = ExternalLinks(uow)
    for ref in refs:
        if not ref.external_id:
            continue
        found = await repo.of_record(ref.connector_id, ref.object_type, ref.external_id)
        if found is not None:
            event.deal_id = event.deal_id or found.deal_id
            event.customer_id = event.customer_id or found.customer_id
            return
