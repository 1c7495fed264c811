"""Escalation policy use cases: a tenant's own chains; its "default" overrides the built-in one."""

from __future__ import annotations

from google.protobuf.field_mask_pb2 import FieldMask

from kit.errors import AlreadyExists, NotFound
from kit.resources import Page, PageRequest, UnitOfWork, query_key
from salesops.notify.v1 import escalation_pb2
from services.notify.documents import Documents
from services.notify.domain import escalation_policies as policies
from services.notify.listing import page_in_memory
from services.notify.repositories.configuration import EscalationPolicyRepository

Policy = escalation_pb2.EscalationPolicy
REPLACE = FieldMask(paths=["*"])


def _prepare(_stored: Policy | None, proposed: Policy) -> Policy:
    policies.validate(proposed)
    return proposed


POLICIES = Documents(EscalationPolicyRepository, Policy, "escalation_policy_id", prepare=_prepare)


def _built_in() -> Policy:
    p = policies.built_in()
    p.etag = "0"
    return p


async def create(uow: UnitOfWork, policy: Policy, policy_id: str) -> Policy:
    if await EscalationPolicyRepository(uow).find(policy_id) is not None:
        raise AlreadyExists("escalation_policy", policy_id)
    return await POLICIES.create(uow, policy, policy_id)


async def get(uow: UnitOfWork, policy_id: str) -> Policy:
    row = await EscalationPolicyRepository(uow).find(policy_id or policies.DEFAULT_ID)
    if row is not None:
        return POLICIES.read(row)
    if policy_id in ("", policies.DEFAULT_ID):
        return _built_in()
    raise NotFound("escalation_policy", policy_id)


async def listing(uow: UnitOfWork, page: PageRequest) -> Page[Policy]:
    """Ordered by display name (then id); the built-in default unless the tenant has its own."""
    own = [POLICIES.read(r) for r in await EscalationPolicyRepository(uow).everything()]
    if policies.DEFAULT_ID not in {p.escalation_policy_id for p in own}:
        own.append(_built_in())
    return page_in_memory(
        uow,
        own,
        lambda p: (p.display_name, p.escalation_policy_id),
        page,
        query_key("notify.EscalationPolicy"),
    )


async def replace(uow: UnitOfWork, policy: Policy) -> Policy:
    """A full replacement (validated); replacing "default" stores the tenant's own default chain."""
    missing = _built_in if policy.escalation_policy_id == policies.DEFAULT_ID else None
    return await POLICIES.update(uow, policy, REPLACE, missing=missing)


async def delete(uow: UnitOfWork, policy_id: str, etag: str) -> None:
    """Deleting the tenant's "default" restores the built-in chain; running chains keep their copy."""
    await POLICIES.delete(uow, policy_id, etag)
