"""Tenant configuration: grading, routing, pool, SLA, intake and follow-up policies (admins change them).

New grading rules can re-grade the open leads: a Temporal workflow per tenant and rules version, started
before the change commits, so neither a crash nor a restart loses it (its batches wait for the commit).
"""

from __future__ import annotations

import contextlib
from typing import Any

from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from kit.errors import PermissionDenied
from kit.grpc import context as call
from kit.resources import UnitOfWork
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads import policies
from services.leads.api.base import ApiBase, Ctx
from services.leads.workflows import REGRADE_WORKFLOW, RegradeInput, regrade_workflow_id


class SettingsApi(ApiBase):
    async def _get_setting(self, kind: str) -> Any:
        who = call.principal()
        async with self.read(who) as uow:
            return await policies.load(uow, kind)

    async def _update_setting(self, kind: str, msg: Any, paths: Any, *, regrade: bool = False) -> Any:
        who = call.principal()
        if not who.is_admin:
            raise PermissionDenied("only sales-ops admins change tenant configuration", reason="NOT_ADMIN")

        async def work(uow: UnitOfWork) -> Any:
            saved = await policies.save(uow, kind, msg, list(paths), who.user_id)
            if regrade:
                await self._start_regrade(who.tenant, saved.version)
            return saved

        return await self.write(who, work)

    async def _start_regrade(self, tenant: str, rules_version: int) -> None:
        # The same rules version asked twice (a retried unit of work): one re-grade is enough.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self.rt.temporal.start_workflow(
                REGRADE_WORKFLOW,
                RegradeInput(tenant, rules_version),
                id=regrade_workflow_id(tenant, rules_version),
                task_queue=self.rt.settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )

    async def GetGradingRules(
        self, request: pb.GetGradingRulesRequest, context: Ctx
    ) -> pb.GetGradingRulesResponse:
        return pb.GetGradingRulesResponse(grading_rules=await self._get_setting(policies.GRADING))

    async def UpdateGradingRules(
        self, request: pb.UpdateGradingRulesRequest, context: Ctx
    ) -> pb.UpdateGradingRulesResponse:
        msg = await self._update_setting(
            policies.GRADING,
            request.grading_rules,
            request.update_mask.paths,
            regrade=request.regrade_open_leads,
        )
        return pb.UpdateGradingRulesResponse(grading_rules=msg)

    async def GetRoutingRules(
        self, request: pb.GetRoutingRulesRequest, context: Ctx
    ) -> pb.GetRoutingRulesResponse:
        return pb.GetRoutingRulesResponse(routing_rules=await self._get_setting(policies.ROUTING))

    async def UpdateRoutingRules(
        self, request: pb.UpdateRoutingRulesRequest, context: Ctx
    ) -> pb.UpdateRoutingRulesResponse:
        msg = await self._update_setting(policies.ROUTING, request.routing_rules, request.update_mask.paths)
        return pb.UpdateRoutingRulesResponse(routing_rules=msg)

    async def GetPoolRules(self, request: pb.GetPoolRulesRequest, context: Ctx) -> pb.GetPoolRulesResponse:
        return pb.GetPoolRulesResponse(pool_rules=await self._get_setting(policies.POOL))

    async def UpdatePoolRules(
        self, request: pb.UpdatePoolRulesRequest, context: Ctx
    ) -> pb.UpdatePoolRulesResponse:
        msg = await self._update_setting(policies.POOL, request.pool_rules, request.update_mask.paths)
        return pb.UpdatePoolRulesResponse(pool_rules=msg)

    async def GetSlaPolicies(
        self, request: pb.GetSlaPoliciesRequest, context: Ctx
    ) -> pb.GetSlaPoliciesResponse:
        return pb.GetSlaPoliciesResponse(sla_policies=await self._get_setting(policies.SLA))

    async def UpdateSlaPolicies(
        self, request: pb.UpdateSlaPoliciesRequest, context: Ctx
    ) -> pb.UpdateSlaPoliciesResponse:
        msg = await self._update_setting(policies.SLA, request.sla_policies, request.update_mask.paths)
        return pb.UpdateSlaPoliciesResponse(sla_policies=msg)

    async def GetIntakePolicy(
        self, request: pb.GetIntakePolicyRequest, context: Ctx
    ) -> pb.GetIntakePolicyResponse:
        return pb.GetIntakePolicyResponse(intake_policy=await self._get_setting(policies.INTAKE))

    async def UpdateIntakePolicy(
        self, request: pb.UpdateIntakePolicyRequest, context: Ctx
    ) -> pb.UpdateIntakePolicyResponse:
        msg = await self._update_setting(policies.INTAKE, request.intake_policy, request.update_mask.paths)
        return pb.UpdateIntakePolicyResponse(intake_policy=msg)

    async def GetFollowUpPolicy(
        self, request: pb.GetFollowUpPolicyRequest, context: Ctx
    ) -> pb.GetFollowUpPolicyResponse:
        return pb.GetFollowUpPolicyResponse(follow_up_policy=await self._get_setting(policies.FOLLOW_UP))

    async def UpdateFollowUpPolicy(
        self, request: pb.UpdateFollowUpPolicyRequest, context: Ctx
    ) -> pb.UpdateFollowUpPolicyResponse:
        msg = await self._update_setting(
            policies.FOLLOW_UP, request.follow_up_policy, request.update_mask.paths
        )
        return pb.UpdateFollowUpPolicyResponse(follow_up_policy=msg)
