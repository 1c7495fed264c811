"""Approvals on a phone: the approver's queue (axe-checked) and an approval decided from it; a
decision on a stale copy (refused with the server's reason, reloaded, then recorded once); a step
delegated from the phone, which then waits in the delegate's queue.

The pending approval is made through the REST API as a rep would: a 600,000 deal moved into
negotiation starts the demo tenant's contract flow (legal, finance and the GM in parallel; see
tests/pipeline/test_approval_gateway_e2e.py). Legal and finance approve through the API; the GM
approves from the phone, and the page then shows the approval as approved.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from functools import partial
from typing import Any

import httpx
import pytest

from tests.pipeline.test_stack_flow import _until
from tests.web.conftest import Stack, axe_violations, new_page, screenshot, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web")]


def call(stack: Stack, user: str, method: str, path: str, body: object | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {stack.tokens[user]}", "Idempotency-Key": str(uuid.uuid4())}
    return httpx.request(method, f"{stack.gateway}{path}", json=body, headers=headers, timeout=30)


def ok(reply: httpx.Response) -> dict[str, Any]:
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def contract_approval(stack: Stack, deal_id: str, amount_minor: int = 60_000_000) -> str:
    """A rep's deal over 500,000 through every gate into negotiation: the contract flow's approval id."""
    close = date.today() + timedelta(days=30)
    day = {"year": close.year, "month": close.month, "day": close.day}
    deal = {
        "dealId": deal_id,
        "title": "Plant-wide MES rollout",
        "customer": {"displayName": f"Suzhou Valve Works {deal_id}", "industry": "manufacturing"},
        "ownerUserId": "rep-a1",
        "amount": {"amountMinor": str(amount_minor), "currency": "CNY"},
        "expectedCloseDate": day,
        "qualification": {
            "budgetMin": {"amountMinor": str(amount_minor - 5_000_000), "currency": "CNY"},
            "budgetMax": {"amountMinor": str(amount_minor + 5_000_000), "currency": "CNY"},
            "decisionDate": day,
            "decisionMakerAccess": "DECISION_MAKER_ACCESS_MET",
        },
    }
    ok(call(stack, "rep-a1", "POST", "/v1/deals", deal))
    for kind in ("meeting_minutes", "signed_requirement_confirmation", "quote"):
        ev = {
            "evidenceId": f"{deal_id}-{kind}",
            "evidenceTypeId": kind,
            "attachment": {"uri": f"s3://web/{kind}"},
        }
        ok(call(stack, "rep-a1", "POST", f"/v1/deals/{deal_id}/evidence", ev))
    tick = {"itemId": "terms_agreed", "checked": True}
    ok(call(stack, "rep-a1", "POST", f"/v1/deals/{deal_id}:setChecklistItem", tick))
    moved = ok(call(stack, "rep-a1", "POST", f"/v1/deals/{deal_id}:moveStage", {"toStageId": "negotiation"}))
    [approval_id] = moved["startedApprovalIds"]
    return str(approval_id)


def queued_for(stack: Stack, user: str, approval_id: str) -> bool:
    items = ok(call(stack, user, "GET", "/v1/approvals:pendingForMe")).get("items", [])
    return any(i["approval"]["approvalId"] == approval_id for i in items)


def test_an_approver_approves_from_the_phone(browser: Any, stack: Stack) -> None:
    deal_id = f"WEB-APPROVAL-{uuid.uuid4().hex[:8].upper()}"
    approval_id = contract_approval(stack, deal_id)
    _until("the GM's queue", partial(queued_for, stack, "gm", approval_id), 120)
    for user in ("legal", "finance"):
        _until(f"{user}'s queue", partial(queued_for, stack, user, approval_id), 120)
        ok(call(stack, user, "POST", f"/v1/approvals/{approval_id}:approve", {"actionId": str(uuid.uuid4())}))

    page = new_page(browser, phone=True, axe=True)
    sign_in(page, stack, "gm")
    page.goto(f"{stack.app}approvals")
    item = page.locator(f'li[data-approval="{approval_id}"]')
    item.wait_for()
    assert "已等待" in item.inner_text()  # its age in the queue
    assert axe_violations(page) == []
    screenshot(page, "approvals-queue-phone")

    item.locator("a").click()
    page.locator("h1", has_text="Plant-wide MES rollout").wait_for()
    state = page.get_by_test_id("approval-state")
    assert state.inner_text() == "审批中"
    # A reject needs a reason: said on the form, nothing sent.
    page.locator('button[data-action="reject"]').click()
    page.locator("#comment-err").wait_for()
    assert page.locator("textarea[name=comment]").get_attribute("aria-invalid") == "true"
    page.locator("textarea[name=comment]").fill("Terms checked, fine by me.")
    page.locator('button[data-action="approve"]').click()
    page.locator('section[data-state="APPROVED"]').wait_for()
    assert state.inner_text() == "已通过"
    assert "Terms checked, fine by me." in page.locator(".timeline").inner_text()
    assert page.locator("form.decide").count() == 0  # nothing waits on the GM any more
    screenshot(page, "approval-approved-phone")
    page.context.close()

    approval = ok(call(stack, "rep-a1", "GET", f"/v1/approvals/{approval_id}"))["approval"]
    assert approval["state"] == "APPROVAL_STATE_APPROVED"
    approvals_by_gm = [h for h in approval["history"] if h.get("actorUserId") == "gm"]
    assert [h["type"] for h in approvals_by_gm] == ["APPROVAL_ACTION_TYPE_APPROVE"]  # one click, one action
    assert not queued_for(stack, "gm", approval_id)


def history_of(stack: Stack, approval_id: str) -> list[dict[str, Any]]:
    approval = ok(call(stack, "rep-a1", "GET", f"/v1/approvals/{approval_id}"))["approval"]
    return list(approval.get("history", []))


def test_a_stale_approval_is_refused_with_its_reason_reloaded_and_decided_once(
    browser: Any, stack: Stack
) -> None:
    deal_id = f"WEB-STALE-{uuid.uuid4().hex[:8].upper()}"
    approval_id = contract_approval(stack, deal_id)
    for user in ("gm", "legal"):
        _until(f"{user}'s queue", partial(queued_for, stack, user, approval_id), 120)

    page = new_page(browser, phone=True)
    sign_in(page, stack, "gm")
    page.goto(f"{stack.app}approvals/{approval_id}")
    page.locator("form.decide").wait_for()
    comment = page.locator("textarea[name=comment]")
    comment.fill("Fine by the GM.")

    # Legal decides after the GM's page loaded: the GM's copy (its etag) is now stale.
    ok(call(stack, "legal", "POST", f"/v1/approvals/{approval_id}:approve", {"actionId": str(uuid.uuid4())}))
    page.locator('button[data-action="approve"]').click()
    refusal = page.locator(".notice.stale[role=alert]")
    refusal.wait_for()
    assert "已被他人更新" in refusal.inner_text()
    assert "服务器拒绝了这次操作" in refusal.inner_text()  # the server's own message, shown
    assert refusal.get_attribute("data-reason"), refusal.inner_html()
    # Reloaded: legal's approval is in the history now; what the GM typed is kept.
    page.locator(".timeline li", has_text="legal").wait_for()
    assert comment.input_value() == "Fine by the GM."
    assert [h for h in history_of(stack, approval_id) if h.get("actorUserId") == "gm"] == []
    screenshot(page, "approval-stale-phone")

    # Deciding again, on the fresh copy, is recorded once.
    page.locator('button[data-action="approve"]').click()
    page.locator(".notice[role=status]", has_text="已同意").wait_for()
    history = history_of(stack, approval_id)
    assert [h["type"] for h in history if h.get("actorUserId") == "gm"] == ["APPROVAL_ACTION_TYPE_APPROVE"]
    assert [h["type"] for h in history if h.get("actorUserId") == "legal"] == ["APPROVAL_ACTION_TYPE_APPROVE"]
    page.context.close()


def test_an_approver_delegates_a_step_from_the_phone_and_the_delegate_sees_it(
    browser: Any, stack: Stack
) -> None:
    deal_id = f"WEB-DELEGATE-{uuid.uuid4().hex[:8].upper()}"
    approval_id = contract_approval(stack, deal_id)
    _until("legal's queue", partial(queued_for, stack, "legal", approval_id), 120)
    assert not queued_for(stack, "tech-lead", approval_id)

    page = new_page(browser, phone=True)
    sign_in(page, stack, "legal")
    page.goto(f"{stack.app}approvals/{approval_id}")
    page.locator("form.decide").wait_for()
    page.locator("details.delegate summary").click()
    # Nobody named: said on the form, nothing sent.
    page.locator('button[data-action="delegate"]').click()
    page.locator("#delegate-err").wait_for()
    page.locator("input[name=delegate]").fill("tech-lead")
    page.locator("textarea[name=comment]").fill("Tech lead knows this contract.")
    page.locator('button[data-action="delegate"]').click()
    page.locator(".notice[role=status]", has_text="已转交").wait_for()
    page.locator(".timeline li", has_text="tech-lead").wait_for()
    screenshot(page, "approval-delegated-phone")
    page.context.close()

    delegations = [h for h in history_of(stack, approval_id) if h["type"] == "APPROVAL_ACTION_TYPE_DELEGATE"]
    assert [(h["actorUserId"], h.get("targetUserIds")) for h in delegations] == [("legal", ["tech-lead"])]

    # The delegate's phone: the approval waits in their queue, marked delegated, and they may decide it.
    _until("tech-lead's queue", partial(queued_for, stack, "tech-lead", approval_id), 120)
    page = new_page(browser, phone=True)
    sign_in(page, stack, "tech-lead")
    page.goto(f"{stack.app}approvals")
    item = page.locator(f'li[data-approval="{approval_id}"]')
    item.wait_for()
    assert item.locator(".tag").count() == 1, item.inner_html()
    item.locator("a").click()
    page.locator("form.decide").wait_for()
    page.context.close()
