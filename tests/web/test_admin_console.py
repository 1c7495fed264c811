"""Admin on a desktop: routing simulate shows the explain trace; a gate dry-run shows what a deal misses.

Both are dry runs (SimulateRouting, CheckGate): nothing is recorded. The admin pages are axe-checked.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.web.conftest import Stack, axe_violations, new_page, screenshot, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web")]


def call(stack: Stack, user: str, method: str, path: str, body: object | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {stack.tokens[user]}", "Idempotency-Key": str(uuid.uuid4())}
    return httpx.request(method, f"{stack.gateway}{path}", json=body, headers=headers, timeout=30)


def test_admin_simulates_routing_and_dry_runs_a_gate(browser: Any, stack: Stack) -> None:
    page = new_page(browser, phone=False, axe=True)
    sign_in(page, stack, "admin")
    page.goto(f"{stack.app}admin/routing")
    page.locator("table td code").first.wait_for()  # the saved rules, summarised
    assert axe_violations(page) == []

    page.locator("input[name=region]").fill("east/shanghai")
    page.locator("select[name=grade]").select_option("LEAD_GRADE_A")
    page.locator('button[data-action="simulate"]').click()
    trace = page.get_by_test_id("explain-trace")
    trace.wait_for()
    assert trace.locator(".rules-tried > li").count() >= 1
    assert trace.locator(".summary").inner_text().strip()
    screenshot(page, "admin-routing-simulate")

    # A bare deal (no qualification, no evidence): the next stage's gate misses items.
    deal_id = f"WEB-GATE-{uuid.uuid4().hex[:8].upper()}"
    close = date.today() + timedelta(days=45)
    deal = {
        "dealId": deal_id,
        "title": "Gate dry-run",
        "customer": {"displayName": f"Ningbo Pumps {deal_id}", "industry": "manufacturing"},
        "ownerUserId": "rep-a1",
        "amount": {"amountMinor": "1000000", "currency": "CNY"},
        "expectedCloseDate": {"year": close.year, "month": close.month, "day": close.day},
    }
    created = call(stack, "rep-a1", "POST", "/v1/deals", deal)
    assert created.status_code == 200, created.text
    page.goto(f"{stack.app}admin/stages")
    page.locator("table td code").first.wait_for()  # the stage model
    page.locator("input[name=dealId]").fill(deal_id)
    page.locator('button[data-action="dry-run"]').click()
    result = page.get_by_test_id("gate-result")
    result.wait_for()
    assert result.locator('li[data-satisfied="0"]').count() >= 1
    screenshot(page, "admin-gate-dry-run")
    assert axe_violations(page) == []
    # The dry run moved nothing.
    after = call(stack, "rep-a1", "GET", f"/v1/deals/{deal_id}").json()["deal"]
    assert after["stageId"] == created.json()["deal"]["stageId"]
    page.context.close()
