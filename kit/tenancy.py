"""Tenant scoping of ORM sessions: the mixin, the session class and the hooks that enforce it.

A session's `info` says whose it is (`TENANT_KEY`) or that it is the system's (`SYSTEM_KEY`); the
hooks below add `tenant_id = :tenant` to every ORM SELECT, UPDATE and DELETE touching a
`TenantScoped` table, stamp new rows, and refuse tenant-owned work from a session with no tenant.
`kit.db.Database` opens such sessions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import String, bindparam, event
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column, with_loader_criteria

TENANT_KEY = "tenant"
SYSTEM_KEY = "system"


class TenantScopeError(RuntimeError):
    """A tenant-owned table was touched without a tenant, or across tenants."""


class TenantScoped:
    """Mixin for tables whose rows belong to one tenant."""

    tenant_id: Mapped[str] = mapped_column(String(64), index=True, nullable=False)


class ScopedSession(Session):
    """The sync session behind our AsyncSessions; the tenant hooks listen on it only."""


def _scoped_mappers(state: ORMExecuteState) -> bool:
    return any(issubclass(m.class_, TenantScoped) for m in state.all_mappers)


@event.listens_for(ScopedSession, "do_orm_execute")
def _apply_tenant(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    info = state.session.info
    if info.get(SYSTEM_KEY):
        return
    tenant = info.get(TENANT_KEY)
    if tenant is None:
        if _scoped_mappers(state):
            raise TenantScopeError("tenant-owned table queried from a session without a tenant")
        return
    params = state.parameters
    if params is not None and not isinstance(params, Mapping):  # executemany
        if _scoped_mappers(state):  # SQLAlchemy applies no loader criteria to it: it was unscoped
            raise TenantScopeError("ORM bulk UPDATE by primary key is not tenant-scoped: use a WHERE")
        return
    state.statement = state.statement.options(_TENANT_CRITERIA)
    state.parameters = {**params, TENANT_PARAM: tenant} if params else {TENANT_PARAM: tenant}


# The tenant criterion, one for every tenant: its value is a parameter of each execution. A lambda
# closing over the tenant (an option per tenant) made SQLAlchemy look into the lambda's closure for
# the value at every statement: 40-80 us of CPU per ORM statement more than this one (measured A/B).
# A statement the option reaches without the parameter (none known) fails; it never runs unscoped.
TENANT_PARAM = "salesops_tenant"
_TENANT_CRITERIA = with_loader_criteria(
    TenantScoped,
    # The name spelled out: SQLAlchemy's lambda analysis wraps a global read in the lambda.
    lambda cls: cls.tenant_id == bindparam("salesops_tenant"),
    include_aliases=True,
    track_closure_variables=False,
)


@event.listens_for(ScopedSession, "before_flush")
def _stamp_tenant(session: Session, _ctx: Any, _instances: Any) -> None:
    if session.info.get(SYSTEM_KEY):
        return
    tenant = session.info.get(TENANT_KEY)
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, TenantScoped):
            continue
        if tenant is None:
            raise TenantScopeError(f"{type(obj).__name__} written from a session without a tenant")
        if obj.tenant_id is None:
            obj.tenant_id = tenant
        elif obj.tenant_id != tenant:
            raise TenantScopeError(f"{type(obj).__name__} of another tenant written in tenant {tenant!r}")


__all__ = [
    "SYSTEM_KEY",
    "TENANT_KEY",
    "TENANT_PARAM",
    "ScopedSession",
    "TenantScopeError",
    "TenantScoped",
]
