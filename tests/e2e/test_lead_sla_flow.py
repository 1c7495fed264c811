"""No lead waits, end to end on the whole local stack through the gateway.

An A lead arrives over REST and is routed to a Team A rep; nobody calls; the
rep gets the SLA reminder in the in-app inbox (leads' durable timer -> event ->
notify); at breach the supervisor gets the breach in the inbox and the lead
moves to the next rep. The stack runs with an around-the-clock business
calendar and an A window of 40 s so the real timers fire within the test.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_local_stack import _start, _stop, _wait_ready

pytestmark = [pytest.mark.slow]

AROUND_THE_CLOCK = json.dumps(
    {
        "timezone": "Asia/Shanghai",
        "working_hours": {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        "use_cn_holidays": False,
    }
)


def _until(what: str, probe: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_lead_nobody_calls_reminds_the_rep_and_escalates_to_the_supervisor(tmp_path: Path) -> None:
    proc = _start(
        tmp_path / "var", tmp_path / "tokens.json", {"SALESOPS_BUSINESS_CALENDAR": AROUND_THE_CLOCK}
    )
    try:
        _wait_ready(proc)
        info = json.loads((tmp_path / "tokens.json").read_text())
        gw, tokens = str(info["gateway"]), info["tokens"]

        def call(method: str, path: str, user: str, body: object | None = None) -> httpx.Response:
            headers = {"Authorization": f"Bearer {tokens[user]}", "Idempotency-Key": str(uuid.uuid4())}
            return httpx.request(method, f"{gw}{path}", json=body, headers=headers, timeout=20)

        sla = call("GET", "/v1/slaPolicies", "admin")
        assert sla.status_code == 200, sla.text
        policies = sla.json()["slaPolicies"]
        a = next(p for p in policies["policies"] if p["grade"] == "LEAD_GRADE_A")
        a.update(responseWindow="40s", reminderBefore="20s")
        updated = call("PATCH", "/v1/slaPolicies?updateMask=policies", "admin", policies)
        assert updated.status_code == 200, updated.text

        lead = {
            "leadId": "01JSLAE2E00000000000000001",
            "contact": {"name": "Li Na", "phone": "139 0013 9000"},
            "company": {"name": "Hangzhou Tea Export Co."},
            "source": {"channel": "LEAD_CHANNEL_CALL_CENTER"},
            "region": "east/shanghai",
            "statedBudget": {"amountMinor": "50000000", "currency": "CNY"},
        }
        created = call("POST", "/v1/leads", "sup-a", lead)
        assert created.status_code == 200, created.text
        got = created.json()["lead"]
        assert got["grade"] == "LEAD_GRADE_A"
        owner, lead_id = got["ownerUserId"], got["leadId"]
        assert owner.startswith("rep-a") and got["supervisorUserId"] == "sup-a"

        def inbox_item(user: str, category: str) -> dict[str, Any] | None:
            reply = call("GET", "/v1/inbox", user)
            assert reply.status_code == 200, reply.text
            for item in reply.json().get("items", []):
                if item.get("category") == category and item.get("subject", {}).get("id") == lead_id:
                    return dict(item)
            return None

        started = time.monotonic()
        reminder = _until(
            "the rep's SLA reminder", lambda: inbox_item(owner, "NOTIFICATION_CATEGORY_SLA_REMINDER"), 60
        )
        assert reminder["title"]
        breach = _until(
            "the supervisor's breach notice",
            lambda: inbox_item("sup-a", "NOTIFICATION_CATEGORY_SLA_BREACH"),
            60,
        )
        assert breach["title"]
        # The reminder comes about 20 s in, the breach about 40 s in (not before).
        assert time.monotonic() - started >= 15

        def moved() -> dict[str, Any] | None:
            current = call("GET", f"/v1/leads/{lead_id}", "sup-a").json()["lead"]
            return current if current.get("ownerUserId") not in (owner, None) else None

        after = _until("the lead to move to the next rep", moved, 30)
        assert after["ownerUserId"].startswith("rep-a")  # SLA reassignment stays in the team
    finally:
        if proc.poll() is None:
            _stop(proc)
