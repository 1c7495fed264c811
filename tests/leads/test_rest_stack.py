"""End to end through the gateway on the whole local stack (`make run`): an A lead arrives over REST,
is routed by the seeded rules to Team A with an explainable decision and a running first-response
clock; the owner logs the call that stops the clock and converts the lead.

The reminder / breach legs run end to end in tests/e2e/test_lead_sla_flow.py (short window,
around-the-clock calendar) and on Temporal's time-skipping server (test_sla_workflow.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx

from tests.e2e.shared_stack import MARKS, SharedStack

pytestmark = MARKS  # one stack, started once for the tests that only need it running


def test_a_lead_over_rest_is_routed_explained_contacted_and_converted(shared_stack: SharedStack) -> None:
    gw, tokens = shared_stack.gateway, shared_stack.tokens

    def call(method: str, path: str, user: str, body: object | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tokens[user]}", "Idempotency-Key": str(uuid.uuid4())}
        return httpx.request(method, f"{gw}{path}", json=body, headers=headers, timeout=20)

    lead = {
        "leadId": "01JREST0000000000000000001",
        "contact": {"name": "Zhang Wei", "phone": "138 0013 8000"},
        "company": {"name": "ACME Trading Co., Ltd."},
        "source": {"channel": "LEAD_CHANNEL_CALL_CENTER"},
        "region": "east/shanghai",
        "statedBudget": {"amountMinor": "50000000", "currency": "CNY"},
    }
    created = call("POST", "/v1/leads", "sup-a", lead)
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["outcome"] == "INTAKE_OUTCOME_CREATED"
    got = body["lead"]
    assert got["grade"] == "LEAD_GRADE_A" and got["teamPath"] == "east/team-a"
    owner = got["ownerUserId"]
    assert owner.startswith("rep-a") and got["supervisorUserId"] == "sup-a"
    assert got["firstResponse"]["state"] == "FIRST_RESPONSE_STATE_PENDING"
    lead_id = got["leadId"]
    other_rep = call("GET", f"/v1/leads/{lead_id}", "rep-b1")
    assert other_rep.status_code == 404  # another team's lead does not exist for this rep
    explain = call("GET", f"/v1/leads/{lead_id}:explain", "sup-a")
    assert explain.status_code == 200, explain.text
    decision = explain.json()["decisions"][0]
    assert decision["winnerUserId"] == owner and decision["rulesTried"][0]["ruleId"] == "east-hot"
    activity = {
        "activityType": "ACTIVITY_TYPE_CALL",
        "outcome": "ACTIVITY_OUTCOME_REACHED",
        # Now: a call backdated before the assignment is refused (it could not meet the SLA).
        "occurTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "nextStep": {"action": "send quote", "dueDate": {"year": 2030, "month": 1, "day": 2}},
    }
    logged = call("POST", f"/v1/leads/{lead_id}/activities", owner, activity)
    assert logged.status_code == 200, logged.text
    assert logged.json()["activity"]["firstResponse"] is True
    assert logged.json()["lead"]["firstResponse"]["state"] == "FIRST_RESPONSE_STATE_MET"

    def converted_ids() -> list[str]:
        listed = call("GET", "/v1/leads?filter.statuses=LEAD_STATUS_CONVERTED", "sup-a")
        assert listed.status_code == 200, listed.text
        return [x["leadId"] for x in listed.json().get("leads", [])]  # none: the field is left out

    # The stack is shared (tests/e2e/shared_stack.py): other tests' leads may be converted already.
    before = converted_ids()
    assert lead_id not in before
    converted = call("POST", f"/v1/leads/{lead_id}:convert", owner, {"opportunityId": "01JRESTOPP"})
    assert converted.status_code == 200, converted.text
    assert converted.json()["lead"]["status"] == "LEAD_STATUS_CONVERTED"
    after = converted_ids()
    assert sorted(after) == sorted([*before, lead_id])  # this lead joined, nothing else changed
    sla = call("GET", "/v1/slaPolicies", "rep-a1")
    assert sla.status_code == 200 and sla.json()["slaPolicies"]["policies"][0]["responseWindow"] == "3600s"
