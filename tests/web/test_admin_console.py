"""Admin on a desktop: routing simulate shows the explain trace; a gate dry-run shows what a deal misses;
a routing rule saved through the per-field form (a server field violation shown on its input first)
is what simulate then uses.

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


def test_admin_saves_a_routing_rule_through_the_form_and_simulate_uses_it(browser: Any, stack: Stack) -> None:
    tag = uuid.uuid4().hex[:8]
    rule_id, region = f"web-form-{tag}", f"east/form-{tag}"
    page = new_page(browser, phone=False, axe=True)
    sign_in(page, stack, "admin")
    page.goto(f"{stack.app}admin/routing")
    page.locator("table td code").first.wait_for()
    page.get_by_role("button", name="编辑").click()
    form = page.get_by_test_id("routing-form")
    form.wait_for()
    count = form.locator("fieldset.rule").count()

    # A new rule, last: its id, one condition (region is one of ...), the target left without a team.
    form.locator('button[data-action="add-rule"]').click()
    rule = form.locator(f'fieldset[data-rule-index="{count}"]')
    rule.locator(f'input[name="rules[{count}].rule_id"]').fill(rule_id)
    rule.locator(f'input[name="rules[{count}].display_name"]').fill("Form-made rule")
    rule.locator('button[data-action="add-condition"]').click()
    rule.locator(f'input[name="rules[{count}].match.regions"]').fill(region)
    assert axe_violations(page) == []
    page.get_by_role("button", name="保存", exact=True).click()

    # The server's BadRequest field violation lands on the team input of that rule.
    team = rule.locator(f'input[name="rules[{count}].team_path"]')
    rule.locator(f'[data-path="rules[{count}].team_path"] .field-error').wait_for()
    assert team.get_attribute("aria-invalid") == "true"
    assert "required" in rule.locator(f'[data-path="rules[{count}].team_path"] .field-error').inner_text()
    screenshot(page, "admin-routing-form-violation")

    # Fixed, moved to the top (the first matching rule wins), saved.
    team.fill("east/team-b")
    rule.locator(f'select[name="rules[{count}].strategy"]').select_option("ROUTING_STRATEGY_LEAST_LOADED")
    for at in range(count, 0, -1):
        form.locator(f'fieldset[data-rule-index="{at}"] button[data-action="move-up"]').click()
    assert form.locator('input[name="rules[0].rule_id"]').input_value() == rule_id
    page.get_by_role("button", name="保存", exact=True).click()
    page.locator(".policy .notice[role=status]", has_text="已保存").wait_for()
    page.locator("table tbody tr").first.locator("code", has_text=rule_id).wait_for()

    saved = call(stack, "admin", "GET", "/v1/routingRules").json()["routingRules"]
    first = saved["rules"][0]
    assert (first["ruleId"], first["teamPath"], first["match"]["regions"]) == (
        rule_id,
        "east/team-b",
        [region],
    )
    assert len(saved["rules"]) == count + 1

    # Simulate a lead of that region: the trace tries the saved rule first and it matches.
    page.locator("input[name=region]").fill(region)
    page.locator('button[data-action="simulate"]').click()
    tried = page.get_by_test_id("explain-trace").locator(f'.rules-tried > li[data-rule="{rule_id}"]')
    tried.wait_for()
    assert tried.get_attribute("class") == "matched", tried.inner_text()
    screenshot(page, "admin-routing-form-simulate")

    # Removed through the form again: the tenant's rules are as they were.
    page.get_by_role("button", name="编辑").click()
    form.locator('fieldset[data-rule-index="0"] button[data-action="remove"]').click()
    page.get_by_role("button", name="保存", exact=True).click()
    page.locator(".policy .notice[role=status]", has_text="已保存").wait_for()
    after = call(stack, "admin", "GET", "/v1/routingRules").json()["routingRules"]
    assert [r["ruleId"] for r in after["rules"]] == [r["ruleId"] for r in saved["rules"][1:]]
    page.context.close()
