"""A converted lead becomes a gated deal, end to end on the whole local stack through the gateway.

Lead over REST -> routed to a Team A rep -> converted (leads' outbox -> Redis -> pipeline's consumer)
-> the deal exists with the lead's id, owner and team -> a move is refused with the missing item
(HTTP 400, google.rpc.Status with PreconditionFailure) -> evidence is attached -> the move passes and
the probability follows the stage.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx

from tests.e2e.shared_stack import MARKS, SharedStack

pytestmark = MARKS  # one stack, started once for the tests that only need it running


def _until(what: str, probe: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_converted_lead_becomes_a_deal_that_moves_only_through_its_gates(shared_stack: SharedStack) -> None:
    gw, tokens = shared_stack.gateway, shared_stack.tokens

    def call(method: str, path: str, user: str, body: object | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tokens[user]}", "Idempotency-Key": str(uuid.uuid4())}
        return httpx.request(method, f"{gw}{path}", json=body, headers=headers, timeout=20)

    lead = {
        "leadId": "01JPIPE2E00000000000000001",
        "contact": {"name": "Li Na", "phone": "139 0013 9001"},
        "company": {"name": "Ningbo Valve Works", "industry": "manufacturing"},
        "source": {"channel": "LEAD_CHANNEL_CALL_CENTER"},
        "region": "east/shanghai",
        "statedBudget": {"amountMinor": "50000000", "currency": "CNY"},
    }
    created = call("POST", "/v1/leads", "sup-a", lead)
    assert created.status_code == 200, created.text
    owner = created.json()["lead"]["ownerUserId"]
    assert owner.startswith("rep-a")
    close = date.today() + timedelta(days=60)
    converted = call(
        "POST",
        f"/v1/leads/{lead['leadId']}:convert",
        owner,
        {
            "opportunityId": "01JPIPE2EDEAL0000000000001",
            "opportunityName": "Valve line retrofit",
            "expectedCloseDate": {"year": close.year, "month": close.month, "day": close.day},
        },
    )
    assert converted.status_code == 200, converted.text
    deal_id = converted.json()["opportunityId"]

    def the_deal() -> dict[str, Any] | None:
        got = call("GET", f"/v1/deals/{deal_id}", owner)
        return dict(got.json()["deal"]) if got.status_code == 200 else None

    deal = _until("the converted lead's deal", the_deal, 60)
    assert deal["title"] == "Valve line retrofit" and deal["customer"]["displayName"] == "Ningbo Valve Works"
    assert deal["orgPath"] == "east/team-a" and deal["source"]["leadId"] == lead["leadId"]
    assert deal["stageId"] == "initial_contact" and deal["probabilityPercent"] == 10
    assert deal["amount"] == {"amountMinor": "50000000", "currency": "CNY"}

    refused = call("POST", f"/v1/deals/{deal_id}:moveStage", owner, {"toStageId": "needs_confirmed"})
    assert refused.status_code == 400, refused.text
    details = refused.json()["details"]
    violations = [v for d in details for v in d.get("violations", [])]
    assert [(v["type"], v["subject"]) for v in violations] == [
        ("GATE_EVIDENCE", "needs_confirmed/meeting_minutes")
    ]
    assert any(d.get("reason") == "GATE_REJECTED" for d in details)
    dry = call("GET", f"/v1/deals/{deal_id}:checkGate", owner)
    assert dry.status_code == 200 and dry.json()["gateReview"]["outcome"] == "GATE_OUTCOME_REJECTED"

    ev = {
        "evidenceId": "EV-E2E-1",
        "evidenceTypeId": "meeting_minutes",
        "attachment": {"uri": "s3://docs/m1"},
    }
    attached = call("POST", f"/v1/deals/{deal_id}/evidence", owner, ev)
    assert attached.status_code == 200, attached.text
    moved = call("POST", f"/v1/deals/{deal_id}:moveStage", owner, {"toStageId": "needs_confirmed"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["deal"]["probabilityPercent"] == 30
    assert moved.json()["deal"]["weightedAmount"]["amountMinor"] == "15000000"
    # Another team's rep does not see it.
    assert call("GET", f"/v1/deals/{deal_id}", "rep-b1").status_code == 404
