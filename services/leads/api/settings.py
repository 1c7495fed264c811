"""Tenant configuration: grading, routing, pool, SLA, intake and follow-up policies (admins change them).

New grading rules can re-grade the open leads: a Temporal workflow per tenant and rules version, started
before the change commits, so neither a crash nor a restart loses it (its batches wait for the commit).
"""

from __future__ import annotations

import contextlib
from typing import Any

from google.protobuf.message import Message
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from kit.errors import PermissionDenied
from kit.grpc import context as call
from kit.resources import UnitOfWork
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads import policies, simulation
from services.leads.api.base import ApiBase, Ctx
from services.leads.convert import now
from services.leads.workflows import REGRADE_WORKFLOW, RegradeInput, regrade_workflow_id


def _rpc(kind: str, response: type[Message], field: str, *, update: bool = False) -> Any:
    """Get<Document> (or Update<Document>) of one policy document: they are all served the same way."""

    async def rpc(self: Any, request: Any, context: Ctx) -> Message:
        value = await (self._update_rpc(kind, field, request) if update else self._get_setting(kind))
        return response(**{field: value})

    return rpc


class SettingsApi(ApiBase):
    # Each policy document: Get and Update, the same way (UpdateGradingRules may also start the re-grade).
    GetGradingRules = _rpc(policies.GRADING, pb.GetGradingRulesResponse, "grading_rules")
    UpdateGradingRules = _rpc(policies.GRADING, pb.UpdateGradingRulesResponse, "grading_rules", update=True)
    GetRoutingRules = _rpc(policies.ROUTING, pb.GetRoutingRulesResponse, "routing_rules")
    UpdateRoutingRules = _rpc(policies.ROUTING, pb.UpdateRoutingRulesResponse, "routing_rules", update=True)
    GetPoolRules = _rpc(policies.POOL, pb.GetPoolRulesResponse, "pool_rules")
    UpdatePoolRules = _rpc(policies.POOL, pb.UpdatePoolRulesResponse, "pool_rules", update=True)
    GetSlaPolicies = _rpc(policies.SLA, pb.GetSlaPoliciesResponse, "sla_policies")
    UpdateSlaPolicies = _rpc(policies.SLA, pb.UpdateSlaPoliciesResponse, "sla_policies", update=True)
    GetIntakePolicy = _rpc(policies.INTAKE, pb.GetIntakePolicyResponse, "intake_policy")
    UpdateIntakePolicy = _rpc(policies.INTAKE, pb.UpdateIntakePolicyResponse, "intake_policy", update=True)
    GetFollowUpPolicy = _rpc(policies.FOLLOW_UP, pb.GetFollowUpPolicyResponse, "follow_up_policy")
    UpdateFollowUpPolicy = _rpc(
        policies.FOLLOW_UP, pb.UpdateFollowUpPolicyResponse, "follow_up_policy", update=True
    )

    async def SimulateRouting(
        self, request: pb.SimulateRoutingRequest, context: Ctx
    ) -> pb.SimulateRoutingResponse:
        who = call.principal()
        if not who.may_configure:  # admins, or a partner key naming this very method
            raise PermissionDenied("only sales-ops admins simulate routing", reason="NOT_ADMIN")
        r = request
        facts = simulation.facts_of(
            region=r.region,
            product_lines=list(r.product_lines),
            channel=r.channel,
            source_code=r.source_code,
            grade=r.grade,
            language=r.language_code,
        )
        draft = r.routing_rules if r.HasField("routing_rules") else None
        async with self.read(who) as uow:
            decision = await simulation.simulate(uow, facts, draft, now())
        return pb.SimulateRoutingResponse(decision=decision)

    async def _get_setting(self, kind: str) -> Any:
        who = call.principal()
        async with self.read(who) as uow:
            return await policies.load(uow, kind)

    async def _update_setting(self, kind: str, msg: Any, paths: Any, *, regrade: bool = False) -> Any:
        who = call.principal()
        if not who.may_configure:  # admins, or a partner key naming this very method
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

    async def _update_rpc(self, kind: str, field: str, request: Any) -> Any:
        regrade = bool(getattr(request, "regrade_open_leads", False))
        return await self._update_setting(
            kind, getattr(request, field), request.update_mask.paths, regrade=regrade
        )
