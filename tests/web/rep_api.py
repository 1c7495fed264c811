"""The REST calls the rep browser tests set their scene with (as the named demo user)."""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx
from ulid import ULID

from tests.web.conftest import Stack

UNIT = "needs-confirmed"


def _phone() -> str:
    """A phone number of its own: intake merges leads that share one."""
    return f"139 {random.randint(1000, 9999)} {random.randint(1000, 9999)}"


def call(stack: Stack, user: str, method: str, path: str, body: object | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {stack.tokens[user]}", "Idempotency-Key": str(uuid.uuid4())}
    return httpx.request(method, f"{stack.gateway}{path}", json=body, headers=headers, timeout=30)


def ok(reply: httpx.Response) -> dict[str, Any]:
    assert reply.status_code == 200, (
        f"{reply.request.method} {reply.request.url}: {reply.status_code} {reply.text}"
    )
    data: dict[str, Any] = reply.json()
    return data


def a_lead_for(stack: Stack, rep: str, company: str) -> dict[str, Any]:
    """An A lead (budget 500k CNY via the call centre: 70 points) owned by `rep`."""
    lead = {
        "leadId": str(ULID()),
        "contact": {"name": "Li Na", "phone": _phone()},
        "company": {"name": company},
        "source": {"channel": "LEAD_CHANNEL_CALL_CENTER"},
        "region": "east/shanghai",
        "statedBudget": {"amountMinor": "50000000", "currency": "CNY"},
    }
    got = ok(call(stack, "sup-a", "POST", "/v1/leads", lead))["lead"]
    assert got["grade"] == "LEAD_GRADE_A", got
    if got.get("ownerUserId") != rep:
        body = {"assigneeUserId": rep, "reason": "browser test"}
        got = ok(call(stack, "sup-a", "POST", f"/v1/leads/{got['leadId']}:assign", body))["lead"]
    assert got["ownerUserId"] == rep, got
    return dict(got)


def pool_lead(stack: Stack, company: str) -> dict[str, Any]:
    """A C lead: no budget, no channel points; the routing rules leave it in the east pool."""
    lead = {
        "leadId": str(ULID()),
        "contact": {"name": "Zhao Lei", "phone": _phone()},
        "company": {"name": company},
        "source": {"channel": "LEAD_CHANNEL_WEB_FORM"},
        "region": "east/shanghai",
    }
    got = ok(call(stack, "sup-a", "POST", "/v1/leads", lead))["lead"]
    assert got["status"] == "LEAD_STATUS_IN_POOL", got
    return dict(got)


def require_action_unit(stack: Stack) -> None:
    """The tenant's visits need one mandatory action unit (a note), so the form shows it."""
    policy = ok(call(stack, "admin", "GET", "/v1/followUpPolicy"))["followUpPolicy"]
    units = list(policy.get("actionUnits", []))
    if any(u.get("unitId") == UNIT for u in units):
        return
    units.append(
        {
            "unitId": UNIT,
            "displayName": "确认需求与预算",
            "description": "Confirm the need and the budget with the decision maker.",
            "required": True,
            "evidence": "EVIDENCE_KIND_NOTE",
            "activityTypes": ["ACTIVITY_TYPE_VISIT"],
        }
    )
    ok(call(stack, "admin", "PATCH", "/v1/followUpPolicy?updateMask=actionUnits", {"actionUnits": units}))
