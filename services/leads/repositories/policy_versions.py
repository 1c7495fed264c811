"""The version of each of a tenant's stored policy documents, in one query (the policy cache's check)."""

from __future__ import annotations

from sqlalchemy import select

from kit.resources import UnitOfWork
from services.leads.store import settings


async def policy_versions(uow: UnitOfWork) -> dict[str, int]:
    """{document name: version} of the tenant's stored documents (absent: never saved, version 0)."""
    t = settings.current
    rows = await uow.session.execute(select(t.c.document, t.c.version).where(t.c.tenant_id == uow.tenant))
    return {str(d): int(v) for d, v in rows.all()}
