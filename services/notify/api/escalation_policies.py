"""Escalation policies (admin; reads also for services)."""

from __future__ import annotations

from ulid import ULID

from kit.grpc import context as call
from kit.resources import PageRequest
from services.notify import escalation_policies
from services.notify.api.base import ApiBase, Ctx, M, admin_only


class EscalationPoliciesApi(ApiBase):
    async def CreateEscalationPolicy(
        self, request: M.CreateEscalationPolicyRequest, context: Ctx
    ) -> M.CreateEscalationPolicyResponse:
        p = call.principal()
        admin_only(p)
        policy_id = request.escalation_policy.escalation_policy_id or str(ULID())
        saved = await self.tx.run(
            p.tenant, lambda uow: escalation_policies.create(uow, request.escalation_policy, policy_id)
        )
        return M.CreateEscalationPolicyResponse(escalation_policy=saved)

    async def GetEscalationPolicy(
        self, request: M.GetEscalationPolicyRequest, context: Ctx
    ) -> M.GetEscalationPolicyResponse:
        p = call.principal()
        admin_only(p, reads_for_services=True)
        async with self.tx.read(p.tenant) as uow:
            policy = await escalation_policies.get(uow, request.escalation_policy_id)
        return M.GetEscalationPolicyResponse(escalation_policy=policy)

    async def ListEscalationPolicies(
        self, request: M.ListEscalationPoliciesRequest, context: Ctx
    ) -> M.ListEscalationPoliciesResponse:
        p = call.principal()
        admin_only(p, reads_for_services=True)
        page = PageRequest.parse(request.page_size, request.page_token, default=100, maximum=500)
        async with self.tx.read(p.tenant) as uow:
            found = await escalation_policies.listing(uow, page)
        return M.ListEscalationPoliciesResponse(
            escalation_policies=found.items,
            next_page_token=found.next_page_token,
            total_size=found.total_size or 0,
        )

    async def UpdateEscalationPolicy(
        self, request: M.UpdateEscalationPolicyRequest, context: Ctx
    ) -> M.UpdateEscalationPolicyResponse:
        p = call.principal()
        admin_only(p)
        saved = await self.tx.run(
            p.tenant, lambda uow: escalation_policies.replace(uow, request.escalation_policy)
        )
        return M.UpdateEscalationPolicyResponse(escalation_policy=saved)

    async def DeleteEscalationPolicy(
        self, request: M.DeleteEscalationPolicyRequest, context: Ctx
    ) -> M.DeleteEscalationPolicyResponse:
        p = call.principal()
        admin_only(p)
        await self.tx.run(
            p.tenant,
            lambda uow: escalation_policies.delete(uow, request.escalation_policy_id, request.etag),
        )
        return M.DeleteEscalationPolicyResponse()
