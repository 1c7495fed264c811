"""Issue 11 end to end through the gateway, on the whole local stack (`python -m deploy.local`):

a lead is converted (leads' outbox -> Redis -> pipeline's consumer) -> it becomes a deal of a
customer made from the lead -> a gated move is refused with the missing items -> evidence is added
-> the move passes -> the owner's forecast for the close month changes by amount x probability at
each step; the single customer view shows the deal and the lead; a shipment on the still-open deal
raises a reconciliation issue the owner sees and resolves.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from tests.e2e.shared_stack import MARKS, SharedStack
from tests.pipeline.test_stack_flow import _until

pytestmark = MARKS  # one stack, started once for the tests that only need it running

AMOUNT = 80_000_000  # minor units (800,000.00 CNY)


def test_converted_lead_gated_move_evidence_and_the_forecast_moves_by_amount_times_probability(
    shared_stack: SharedStack,
) -> None:
    gw, tokens = shared_stack.gateway, shared_stack.tokens

    def call(
        method: str, path: str, user: str, body: object | None = None, params: Any = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tokens[user]}", "Idempotency-Key": str(uuid.uuid4())}
        return httpx.request(method, f"{gw}{path}", json=body, params=params, headers=headers, timeout=20)

    close = date.today() + timedelta(days=10)

    def weighted(user: str) -> int:
        """The caller's weighted forecast for the month the deal closes in (minor units)."""
        got = call(
            "GET",
            "/v1/forecast",
            user,
            params={
                "period.granularity": "PERIOD_GRANULARITY_MONTH",
                "period.startDate.year": close.year,
                "period.startDate.month": close.month,
                "period.startDate.day": close.day,
            },
        )
        assert got.status_code == 200, got.text
        return int(got.json()["forecast"]["totals"].get("weightedAmount", {}).get("amountMinor", "0"))

    lead = {
        "leadId": "01JGWE2E000000000000000001",
        "contact": {"name": "Chen Jie", "phone": "139 0013 9777"},
        "company": {"name": "Hangzhou Pump Co., Ltd.", "industry": "manufacturing"},
        "source": {"channel": "LEAD_CHANNEL_CALL_CENTER"},
        "region": "east/shanghai",
        "statedBudget": {"amountMinor": str(AMOUNT), "currency": "CNY"},
    }
    created = call("POST", "/v1/leads", "sup-a", lead)
    assert created.status_code == 200, created.text
    owner = created.json()["lead"]["ownerUserId"]
    before = weighted(owner)
    team_before = weighted("sup-a")

    converted = call(
        "POST",
        f"/v1/leads/{lead['leadId']}:convert",
        owner,
        {
            "opportunityId": "01JGWE2EDEAL00000000000001",
            "opportunityName": "Pump line upgrade",
            "expectedCloseDate": {"year": close.year, "month": close.month, "day": close.day},
        },
    )
    assert converted.status_code == 200, converted.text
    deal_id = converted.json()["opportunityId"]

    def the_deal() -> dict[str, Any] | None:
        got = call("GET", f"/v1/deals/{deal_id}", owner)
        return dict(got.json()["deal"]) if got.status_code == 200 else None

    deal = _until("the converted lead's deal", the_deal, 90)
    assert deal["stageId"] == "initial_contact" and deal["probabilityPercent"] == 10
    assert deal["amount"] == {"amountMinor": str(AMOUNT), "currency": "CNY"}
    customer_id = deal["customer"]["customerId"]
    assert customer_id and deal["customer"]["displayName"] == "Hangzhou Pump Co., Ltd."
    # In the forecast at 10 % (the owner's and the team's alike).
    assert weighted(owner) - before == AMOUNT * 10 // 100
    assert weighted("sup-a") - team_before == AMOUNT * 10 // 100

    # A gated move is refused with every missing item, and recorded.
    refused = call("POST", f"/v1/deals/{deal_id}:moveStage", owner, {"toStageId": "needs_confirmed"})
    assert refused.status_code == 400, refused.text
    details = refused.json()["details"]
    violations = [v for d in details for v in d.get("violations", [])]
    assert [(v["type"], v["subject"]) for v in violations] == [
        ("GATE_EVIDENCE", "needs_confirmed/meeting_minutes")
    ]
    assert any(d.get("reason") == "GATE_REJECTED" for d in details)
    assert weighted(owner) - before == AMOUNT * 10 // 100  # a refused move changes nothing

    ev = {
        "evidenceId": "EV-GWE2E-1",
        "evidenceTypeId": "meeting_minutes",
        "attachment": {"uri": "s3://docs/m"},
    }
    attached = call("POST", f"/v1/deals/{deal_id}/evidence", owner, ev)
    assert attached.status_code == 200, attached.text
    moved = call("POST", f"/v1/deals/{deal_id}:moveStage", owner, {"toStageId": "needs_confirmed"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["deal"]["probabilityPercent"] == 30
    # The forecast moved by amount x the new probability.
    assert weighted(owner) - before == AMOUNT * 30 // 100
    assert weighted("sup-a") - team_before == AMOUNT * 30 // 100

    # The single customer view: the deal with its history, the lead it came from.
    view = call("GET", f"/v1/customers/{customer_id}:view", owner)
    assert view.status_code == 200, view.text
    v = view.json()["view"]
    assert [d["deal"]["dealId"] for d in v["deals"]] == [deal_id]
    moves = [(c["field"], c.get("oldValue", ""), c["newValue"]) for c in v["deals"][0]["changes"]]
    assert ("stage", "initial_contact", "needs_confirmed") in moves, moves
    assert [x["leadId"] for x in v["leads"]] == [lead["leadId"]]
    assert call("GET", f"/v1/customers/{customer_id}:view", "rep-b1").status_code == 404

    # A shipment while the deal is open: an issue for the owner, who explains it.
    occur = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    shipped = call(
        "POST",
        "/v1/financeFacts:ingest",
        "admin",
        {
            "facts": [
                {
                    "kind": "FINANCE_FACT_KIND_SHIPMENT_DISPATCHED",
                    "sourceSystem": "erp-e2e",
                    "externalId": "SHIP-E2E-1",
                    "dealId": deal_id,
                    "occurTime": occur,
                }
            ]
        },
    )
    assert shipped.status_code == 200, shipped.text
    [result] = shipped.json()["results"]
    assert result["status"] == "FACT_INGEST_STATUS_ACCEPTED" and result["raisedIssueIds"]
    listed = call("GET", "/v1/reconciliationIssues", owner, params={"filter.dealId": deal_id})
    [issue] = listed.json()["issues"]
    assert issue["kind"] == "RECONCILIATION_ISSUE_KIND_FACT_ON_OPEN_DEAL"
    done = call(
        "POST",
        f"/v1/reconciliationIssues/{issue['issueId']}:resolve",
        owner,
        {
            "resolution": "RECONCILIATION_RESOLUTION_EXPLAINED",
            "note": "sample unit shipped for the trial",
        },
    )
    assert done.status_code == 200, done.text
    assert done.json()["issue"]["state"] == "RECONCILIATION_ISSUE_STATE_RESOLVED"
