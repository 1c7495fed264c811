"""The shipped demo flows and approvers: seeded through the API, resolvable, idempotent."""

from __future__ import annotations

from deploy.local.demo import DEMO_USERS, TENANT
from kit.seeding import SeedClients
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import seed, seed_approvals
from tests.pipeline.conftest import Pipeline, token


async def test_demo_flows_approvers_and_entry_wiring(pipeline: Pipeline) -> None:
    tokens = {u.user_id: token(u.user_id) for u in DEMO_USERS}
    assert {"legal", "finance", "gm", "tech-lead"} <= set(tokens)
    await seed.seed(pipeline.address, tokens, DEMO_USERS)
    clients = SeedClients(TENANT, {"pipeline": pipeline.address}, tokens, DEMO_USERS)
    await seed_approvals.seed(clients)
    await seed_approvals.seed(clients)  # `make run` twice: nothing new
    listed = (await pipeline.call("ListApprovalFlows", pb.ListApprovalFlowsRequest())).approval_flows
    by_id = {f.flow_id: f for f in listed}
    assert set(by_id) == {"contract_over_500k", "custom_solution", "discount_over_threshold"}
    assert {f.version for f in listed} == {1}
    contract = by_id["contract_over_500k"]
    assert [s.step_key for s in contract.steps] == ["legal", "finance_risk", "gm"]
    assert all(not s.after_step_keys for s in contract.steps)  # parallel
    assert contract.trigger.min_amount.amount_minor == 50_000_000
    custom = by_id["custom_solution"]
    assert [s.step_key for s in custom.steps] == [
        "requirement_form",
        "technical_evaluation",
        "quote_approval",
        "customer_confirmation",
    ]
    assert custom.steps[1].due_within.value == 2
    # Every role the flows name is held by an active demo member.
    profiles = (await pipeline.call("ListMemberProfiles", pb.ListMemberProfilesRequest())).member_profiles
    held = {r for p in profiles if p.active for r in p.approver_roles}
    named = {s.approvers.role_key for f in listed for s in f.steps if s.approvers.role_key}
    assert named <= held, named - held
    roles = {p.user_id: (list(p.approver_roles), p.manager_user_id) for p in profiles}
    assert roles["legal"] == (["legal"], "gm") and roles["gm"] == (["gm"], "")
    model = (await pipeline.call("GetStageModel", pb.GetStageModelRequest())).stage_model
    entry = {s.stage_id: list(s.on_entry_approval_flow_ids) for s in model.stages}
    assert entry["negotiation"] == ["contract_over_500k"]
    gated = {s.stage_id: list(s.entry_criteria.required_approval_flow_ids) for s in model.stages}
    assert gated["contract_approval"] == ["contract_over_500k"]
    assert model.version == 1  # the second run saved nothing
