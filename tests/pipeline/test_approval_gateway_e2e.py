"""Issue 12 end to end through the gateway on the whole local stack (`python -m deploy.local`):

the demo tenant's shipped contract flow (legal, finance risk and the GM in parallel) starts when a
600,000 deal enters negotiation (MoveStage names it); the demo stage model gates contract approval
on it, so the deal cannot enter contract approval until all three demo approvers have approved; each
of them has it in their queue (ListMyPendingApprovals) and in their notify inbox. A 100,000 deal,
which the flow's trigger does not match, starts nothing and enters contract approval without it.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from typing import Any

import httpx

from tests.e2e.shared_stack import MARKS, SharedStack
from tests.pipeline.test_stack_flow import _until

pytestmark = MARKS  # one stack, started once for the tests that only need it running

AMOUNT = 60_000_000  # 600,000.00 CNY: over the contract flow's trigger
SMALL = 10_000_000  # 100,000.00 CNY: under it
APPROVERS = ("legal", "finance", "gm")


def test_a_big_contract_enters_contract_approval_only_once_all_three_approved(
    shared_stack: SharedStack,
) -> None:
    gw, tokens = shared_stack.gateway, shared_stack.tokens
    assert set(APPROVERS) | {"tech-lead"} <= set(tokens)  # `make run` lists the demo approvers

    def call(
        method: str, path: str, user: str, body: object | None = None, params: Any = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tokens[user]}", "Idempotency-Key": str(uuid.uuid4())}
        return httpx.request(method, f"{gw}{path}", json=body, params=params, headers=headers, timeout=30)

    def ok(resp: httpx.Response) -> dict[str, Any]:
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    # The demo seed's stage model: negotiation starts the shipped flow, contract approval requires it.
    model = ok(call("GET", "/v1/stageModel", "admin"))["stageModel"]
    entry = {s["stageId"]: s.get("onEntryApprovalFlowIds", []) for s in model["stages"]}
    assert entry["negotiation"] == ["contract_over_500k"]
    contract = next(s for s in model["stages"] if s["stageId"] == "contract_approval")
    assert contract["entryCriteria"]["requiredApprovalFlowIds"] == ["contract_over_500k"]

    close = date.today() + timedelta(days=30)
    day = {"year": close.year, "month": close.month, "day": close.day}

    def to_negotiation(deal_id: str, amount: int) -> list[str]:
        """A deal through every gate up to negotiation; the approvals its entry started."""
        deal = {
            "dealId": deal_id,
            "title": "Plant-wide MES rollout",
            "customer": {"displayName": f"Suzhou Valve Works {deal_id}", "industry": "manufacturing"},
            "ownerUserId": "rep-a1",
            "amount": {"amountMinor": str(amount), "currency": "CNY"},
            "expectedCloseDate": day,
            "qualification": {
                "budgetMin": {"amountMinor": str(amount - 5_000_000), "currency": "CNY"},
                "budgetMax": {"amountMinor": str(amount + 5_000_000), "currency": "CNY"},
                "decisionDate": day,
                "decisionMakerAccess": "DECISION_MAKER_ACCESS_MET",
            },
        }
        ok(call("POST", "/v1/deals", "rep-a1", deal))
        for kind in ("meeting_minutes", "signed_requirement_confirmation", "quote"):
            ev = {
                "evidenceId": f"{deal_id}-{kind}",
                "evidenceTypeId": kind,
                "attachment": {"uri": f"s3://e2e/{kind}"},
            }
            ok(call("POST", f"/v1/deals/{deal_id}/evidence", "rep-a1", ev))
        tick = {"itemId": "terms_agreed", "checked": True}
        ok(call("POST", f"/v1/deals/{deal_id}:setChecklistItem", "rep-a1", tick))
        moved = ok(call("POST", f"/v1/deals/{deal_id}:moveStage", "rep-a1", {"toStageId": "negotiation"}))
        return list(moved.get("startedApprovalIds", []))

    # Under the trigger: no approval starts, and the gate's approval criterion does not apply.
    assert to_negotiation("E2E-APPROVAL-SMALL", SMALL) == []
    small = ok(
        call(
            "POST",
            "/v1/deals/E2E-APPROVAL-SMALL:moveStage",
            "rep-a1",
            {"toStageId": "contract_approval"},
        )
    )
    assert small["deal"]["stageId"] == "contract_approval"

    deal_id = "E2E-APPROVAL-1"
    [approval_id] = to_negotiation(deal_id, AMOUNT)  # the entry's contract flow

    def refused_for_approval() -> None:
        got = call("POST", f"/v1/deals/{deal_id}:moveStage", "rep-a1", {"toStageId": "contract_approval"})
        assert got.status_code == 400, got.text
        violations = [v for d in got.json()["details"] for v in d.get("violations", [])]
        assert [(v["type"], v["subject"]) for v in violations] == [
            ("GATE_APPROVAL", "contract_approval/contract_over_500k")
        ]

    def running() -> dict[str, Any] | None:
        got = call("GET", f"/v1/approvals/{approval_id}", "rep-a1")
        return dict(got.json()["approval"]) if got.status_code == 200 else None

    approval = _until("the entry's approval", running, 120)
    assert approval["state"] == "APPROVAL_STATE_IN_PROGRESS" and approval["dealId"] == deal_id
    refused_for_approval()

    for user in APPROVERS:

        def queued(user: str = user) -> list[dict[str, Any]] | None:
            items = ok(call("GET", "/v1/approvals:pendingForMe", user)).get("items", [])
            return [i for i in items if i["approval"]["approvalId"] == approval_id] or None

        [item] = _until(f"{user}'s queue", queued, 60)
        assert item["approval"]["dealId"] == deal_id

        def inboxed(user: str = user) -> bool:
            items = ok(call("GET", "/v1/inbox", user)).get("items", [])
            return any(approval_id in json.dumps(i) for i in items)

        _until(f"{user}'s inbox", inboxed, 120)

    for n, user in enumerate(APPROVERS):
        body = {"actionId": str(uuid.uuid4()), "comment": f"ok from {user}"}
        ok(call("POST", f"/v1/approvals/{approval_id}:approve", user, body))
        if n < len(APPROVERS) - 1:
            refused_for_approval()  # one of three, two of three: still missing
    assert ok(call("GET", f"/v1/approvals/{approval_id}", "rep-a1"))["approval"]["state"] == (
        "APPROVAL_STATE_APPROVED"
    )
    entered = ok(call("POST", f"/v1/deals/{deal_id}:moveStage", "rep-a1", {"toStageId": "contract_approval"}))
    assert entered["deal"]["stageId"] == "contract_approval"
    # Nobody's queue holds it any more.
    for user in APPROVERS:
        items = ok(call("GET", "/v1/approvals:pendingForMe", user)).get("items", [])
        assert approval_id not in json.dumps(items)
