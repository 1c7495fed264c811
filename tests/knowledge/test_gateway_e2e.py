# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""Issue 14 end to end through the gateway on the whole local stack (`python -m deploy.local`):

a rep opens a deal, gets 3 recommended cards, records the use of one, gets the feedback
reminder in the notify inbox (from the duty's durable timer on the stack's Temporal, through
the outbox, Redis and notify), and gives feedback, which settles the duty. A use past
its deadline (logged late) is OVERDUE on the supervisor's board and in the supervisor's inbox.

The default 48 h window is kept. So that the reminder (4 h before the deadline) falls due
during the test, the use is logged as made 46 h ago: a use may be synced up to 7 days late
(offline reps); its deadline runs from when the card was used.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from tests.e2e.shared_stack import MARKS, SharedStack
from tests.pipeline.test_stack_flow import _until

pytestmark = MARKS  # one stack, started once for the tests that only need it running


def test_a_rep_uses_a_recommended_card_is_reminded_and_gives_feedback(shared_stack: SharedStack) -> None:
    gw, tokens = shared_stack.gateway, shared_stack.tokens

    def call(
        method: str, path: str, user: str, body: object | None = None, params: Any = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tokens[user]}", "Idempotency-Key": str(uuid.uuid4())}
        return httpx.request(method, f"{gw}{path}", json=body, params=params, headers=headers, timeout=30)

    def ok(resp: httpx.Response) -> dict[str, Any]:
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    # The rep opens a deal (made here, in manufacturing).
    close = date.today() + timedelta(days=30)
    deal_id = "E2E-KNOWLEDGE-1"
    deal = {
        "dealId": deal_id,
        "title": "Line-side quality inspection",
        "customer": {"displayName": "Wuxi Gearbox Co.", "industry": "manufacturing"},
        "ownerUserId": "rep-a1",
        "amount": {"amountMinor": "12000000", "currency": "CNY"},
        "expectedCloseDate": {"year": close.year, "month": close.month, "day": close.day},
    }
    ok(call("POST", "/v1/deals", "rep-a1", deal))
    opened = ok(call("GET", f"/v1/deals/{deal_id}", "rep-a1"))["deal"]
    industry, stage = opened["customer"]["industry"], opened["stageId"]

    # Three cards, each with why it is shown.
    params = {"dealId": deal_id, "industry": industry, "stageId": stage}
    recs = ok(call("GET", "/v1/sopCards:recommend", "rep-a1", params=params))["recommendations"]
    assert len(recs) == 3 and all(r["reasons"] for r in recs)
    chosen = recs[0]
    card_id, title = chosen["card"]["cardId"], chosen["card"]["title"]

    # The rep records the use: a feedback duty is open, due 48 h after the use.
    use_id = f"E2E-USE-{uuid.uuid4().hex[:12]}"
    used_at = datetime.now(UTC) - timedelta(hours=46)
    use = {
        "useId": use_id,
        "dealId": deal_id,
        "industry": industry,
        "stageId": stage,
        "recommendationId": chosen["recommendationId"],
        "useTime": used_at.isoformat().replace("+00:00", "Z"),
    }
    recorded = ok(call("POST", f"/v1/sopCards/{card_id}:recordUse", "rep-a1", {"use": use}))
    assert recorded["use"]["feedbackState"] == "FEEDBACK_STATE_PENDING"
    assert not recorded.get("deduplicated", False)

    # The duty's timer reminds the rep through notify: the item is in the rep's inbox.
    def reminded() -> dict[str, Any] | None:
        items = ok(call("GET", "/v1/inbox", "rep-a1")).get("items", [])
        return next(
            (
                i
                for i in items
                if i["category"] == "NOTIFICATION_CATEGORY_FEEDBACK_DUE"
                and i.get("subject", {}).get("id") == deal_id
            ),
            None,
        )

    item = _until("the feedback reminder in the rep's inbox", reminded, 180)
    assert title in item["title"] and item["subject"]["kind"] == "deal"
    [duty] = [
        d for d in ok(call("GET", "/v1/feedbackDuties", "rep-a1")).get("duties", []) if d["useId"] == use_id
    ]
    assert duty["remindersSent"] == 1 and duty["state"] == "FEEDBACK_STATE_PENDING"

    # The rep gives feedback: the duty is settled, in time.
    feedback = {
        "rating": "FEEDBACK_RATING_PARTLY",
        "reasonCategory": "FEEDBACK_REASON_CATEGORY_MISSING_STEP",
        "reason": "客户先要看同行案例，卡片里没有这一步",
    }
    rated = ok(call("POST", f"/v1/cardUses/{use_id}:submitFeedback", "rep-a1", {"feedback": feedback}))
    assert rated["use"]["feedbackState"] == "FEEDBACK_STATE_SUBMITTED"
    assert not rated["use"]["feedback"].get("late", False)
    open_duties = ok(call("GET", "/v1/feedbackDuties", "rep-a1")).get("duties", [])
    assert use_id not in json.dumps(open_duties)
    # Another rep does not see the use.
    assert call("GET", f"/v1/cardUses/{use_id}", "rep-b1").status_code == 404

    # Overdue is visible to the supervisor: rep-a2 logs a use made 49 h ago (past its 48 h
    # deadline); the duty's timer marks it OVERDUE at once and notify tells sup-a.
    late_id = f"E2E-LATE-{uuid.uuid4().hex[:12]}"
    late_use = dict(use, useId=late_id, dealId="E2E-KNOWLEDGE-2", recommendationId="")
    late_use["useTime"] = (datetime.now(UTC) - timedelta(hours=49)).isoformat().replace("+00:00", "Z")
    ok(call("POST", f"/v1/sopCards/{card_id}:recordUse", "rep-a2", {"use": late_use}))
    board = {"orgPath": "east/team-a", "states": ["FEEDBACK_STATE_OVERDUE"]}

    def overdue() -> list[dict[str, Any]] | None:
        duties = ok(call("GET", "/v1/feedbackDuties", "sup-a", params=board)).get("duties", [])
        return [d for d in duties if d["useId"] == late_id] or None

    [late] = _until("rep-a2's overdue duty on sup-a's board", overdue, 180)
    assert late["userId"] == "rep-a2" and late["orgPath"] == "east/team-a"

    def told() -> bool:
        items = ok(call("GET", "/v1/inbox", "sup-a", params={"pageSize": 100})).get("items", [])
        return any("Card feedback overdue" in i["title"] and "E2E-KNOWLEDGE-2" in i["body"] for i in items)

    _until("the overdue notice in sup-a's inbox", told, 180)
