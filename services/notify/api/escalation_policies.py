"""Escalation policies (a tenant 'default' overrides the built-in chain)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from ulid import ULID

from kit.errors import (
    Aborted,
    AlreadyExists,
    NotFound,
)
from kit.grpc import context as call
from salesops.notify.v1 import (
    escalation_pb2,
)
from services.notify import (
    policies,
)
from services.notify.api.base import ApiBase, Ctx, M
from services.notify.api.base import admin_only as _admin
from services.notify.store import (
    EscalationPolicyRow,
)


class EscalationPoliciesApi(ApiBase):
    async def CreateEscalationPolicy(
        self, request: M.CreateEscalationPolicyRequest, context: Ctx
    ) -> M.CreateEscalationPolicyResponse:
        p = call.principal()
        _admin(p)
        policy = escalation_pb2.EscalationPolicy()
        policy.CopyFrom(request.escalation_policy)
        policies.validate(policy)
        policy.escalation_policy_id = policy.escalation_policy_id or str(ULID())
        policy.built_in, policy.etag = False, ""
        async with self.rt.db.session(p.tenant) as s:
            exists = await s.scalar(
                select(func.count()).where(EscalationPolicyRow.id == policy.escalation_policy_id)
            )
            if exists:
                raise AlreadyExists("escalation_policy", policy.escalation_policy_id)
            s.add(
                EscalationPolicyRow(
                    id=policy.escalation_policy_id,
                    version=1,
                    payload=policy.SerializeToString(),
                    updated_at=datetime.now(UTC),
                )
            )
            await s.commit()
        policy.etag = "1"
        return M.CreateEscalationPolicyResponse(escalation_policy=policy)

    async def GetEscalationPolicy(
        self, request: M.GetEscalationPolicyRequest, context: Ctx
    ) -> M.GetEscalationPolicyResponse:
        p = call.principal()
        _admin(p, reads_for_services=True)
        async with self.rt.db.session(p.tenant) as s:
            policy = await policies.load(s, p.tenant, request.escalation_policy_id)
            version = await s.scalar(
                select(EscalationPolicyRow.version).where(
                    EscalationPolicyRow.id == policy.escalation_policy_id
                )
            )
        policy.etag = str(version or 0)
        return M.GetEscalationPolicyResponse(escalation_policy=policy)

    async def ListEscalationPolicies(
        self, request: M.ListEscalationPoliciesRequest, context: Ctx
    ) -> M.ListEscalationPoliciesResponse:
        p = call.principal()
        _admin(p, reads_for_services=True)
        async with self.rt.db.session(p.tenant) as s:
            rows = list(await s.scalars(select(EscalationPolicyRow).order_by(EscalationPolicyRow.id)))
        out = []
        for row in rows:
            policy = escalation_pb2.EscalationPolicy.FromString(row.payload)
            policy.etag = str(row.version)
            out.append(policy)
        if policies.DEFAULT_ID not in {r.id for r in rows}:
            out.insert(0, policies.built_in())
        return M.ListEscalationPoliciesResponse(escalation_policies=out, total_size=len(out))

    async def UpdateEscalationPolicy(
        self, request: M.UpdateEscalationPolicyRequest, context: Ctx
    ) -> M.UpdateEscalationPolicyResponse:
        """A full replacement (validated); updating "default" stores the tenant's own default chain."""
        p = call.principal()
        _admin(p)
        policy = escalation_pb2.EscalationPolicy()
        policy.CopyFrom(request.escalation_policy)
        policies.validate(policy)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(
                select(EscalationPolicyRow).where(EscalationPolicyRow.id == policy.escalation_policy_id)
            )
            if row is None and policy.escalation_policy_id != policies.DEFAULT_ID:
                raise NotFound("escalation_policy", policy.escalation_policy_id)
            if row is not None and policy.etag and policy.etag != str(row.version):
                raise Aborted("the policy changed since it was read; reload and retry")
            policy.etag, policy.built_in = "", False
            if row is None:
                row = EscalationPolicyRow(id=policies.DEFAULT_ID, version=0, payload=b"")
                s.add(row)
            row.version += 1
            row.payload = policy.SerializeToString()
            row.updated_at = datetime.now(UTC)
            await s.commit()
            policy.etag = str(row.version)
        return M.UpdateEscalationPolicyResponse(escalation_policy=policy)

    async def DeleteEscalationPolicy(
        self, request: M.DeleteEscalationPolicyRequest, context: Ctx
    ) -> M.DeleteEscalationPolicyResponse:
        """Deleting the tenant's "default" restores the built-in chain; running chains keep their copy."""
        p = call.principal()
        _admin(p)
        async with self.rt.db.session(p.tenant) as s:
            row = await s.scalar(
                select(EscalationPolicyRow).where(EscalationPolicyRow.id == request.escalation_policy_id)
            )
            if row is None:
                raise NotFound("escalation_policy", request.escalation_policy_id)
            await s.delete(row)
            await s.commit()
        return M.DeleteEscalationPolicyResponse()
