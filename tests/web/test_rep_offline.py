"""A rep on a phone: the A lead's countdown, a pool claim (and a lost race), a visit logged
without signal that reaches the server exactly once when the signal is back; axe on the pages.
The worklist's time budget is measured by test_rep_budget.py."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.web.conftest import Stack, axe_violations, new_page, screenshot, sign_in
from tests.web.rep_api import UNIT, a_lead_for, call, ok, pool_lead, require_action_unit

# The first browser test of a worker also starts the stack (minutes on a busy machine).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web"), pytest.mark.timeout(900)]


def test_a_rep_claims_and_logs_a_visit_offline_that_syncs_exactly_once(browser: Any, stack: Stack) -> None:
    require_action_unit(stack)
    hot = a_lead_for(stack, "rep-a1", "Suzhou Precision Parts Co.")
    free = pool_lead(stack, "Ningbo Harbour Logistics")
    raced = pool_lead(stack, "Wuxi Textile Group")

    page = new_page(browser, axe=True)
    context = page.context
    batches: list[str] = []
    page.on(
        "request",
        lambda r: batches.append(r.post_data or "") if r.url.endswith("/v1/sync:batch") else None,
    )
    sign_in(page, stack, "rep-a1")
    page.wait_for_url("**/app/worklist")

    # The A lead, with its grade and a countdown that runs.
    row = page.locator(f'li.lead-row[data-lead="{hot["leadId"]}"]')
    row.wait_for()
    assert row.locator(".grade").inner_text() == "A"
    timer = row.get_by_role("timer")
    first = timer.inner_text()
    assert "剩余" in first or "已超时" in first, first
    page.wait_for_function(
        "([el, before]) => el.textContent !== before", arg=[timer.element_handle(), first], timeout=10_000
    )
    violations = axe_violations(page)
    assert violations == [], [
        (v["id"], v["help"], [n["html"][:120] for n in v["nodes"][:3]]) for v in violations
    ]
    screenshot(page, "rep-worklist-phone")

    # Claim a pool lead; lose a race for another (rep-a2 got there first): the page says who won.
    ok(call(stack, "rep-a2", "POST", f"/v1/leads/{raced['leadId']}:claim", {}))
    page.locator(f'li.pool-row[data-lead="{free["leadId"]}"] button').click()
    page.locator(f'li.pool-row[data-lead="{free["leadId"]}"] [role=status]', has_text="已认领").wait_for()
    page.locator(f'li.pool-row[data-lead="{raced["leadId"]}"] button').click()
    lost = page.locator(f'li.pool-row[data-lead="{raced["leadId"]}"] [role=status]')
    lost.wait_for()
    assert "rep-a2 抢先认领" in lost.inner_text(), lost.inner_text()
    page.locator(f'li.lead-row[data-lead="{free["leadId"]}"] a').click()

    # The lead page: explain trace, follow-ups, SOP cards section.
    page.locator("#lead-h").wait_for()
    page.locator("#why-h").wait_for()
    page.locator("#sop-h").wait_for()
    violations = axe_violations(page)
    assert violations == [], [
        (v["id"], v["help"], [n["html"][:120] for n in v["nodes"][:3]]) for v in violations
    ]
    screenshot(page, "rep-lead-phone")

    # No signal: log a visit with a check-in, a photo reference and the mandatory unit.
    context.grant_permissions(["geolocation"], origin=stack.gateway)
    context.set_geolocation({"latitude": 29.8683, "longitude": 121.544, "accuracy": 12})
    context.set_offline(True)
    page.locator("a.button-link").click()
    page.locator("#log-h").wait_for()
    marker = f"offline visit {time.time_ns()}"
    page.locator("textarea[name=summary]").fill(marker)
    page.get_by_role("button", name="获取位置签到").click()
    page.get_by_text("已定位").wait_for()
    page.locator("input[name=address]").fill("宁波市北仑区")
    page.locator("input[name=photos]").set_input_files(
        files=[{"name": "storefront.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8\xff\xe0 photo"}]
    )
    page.get_by_text("storefront.jpg").wait_for()
    unit = page.locator(f'[data-unit="{UNIT}"]')
    unit.locator("input[type=checkbox]").check()
    unit.locator("input:not([type=checkbox])").fill("预算 20 万 下月决策")
    page.locator("input[name=nextAction]").fill("send the quote")
    page.get_by_role("button", name="保存").click()
    page.get_by_text("已保存在本机").wait_for()
    badge = page.locator(".sync-badge")
    badge.wait_for()
    assert "1 项更改待同步" in badge.inner_text()
    screenshot(page, "rep-visit-offline-phone")

    # Signal again: the queue goes by itself, and the visit exists once on the server.
    context.set_offline(False)
    badge.wait_for(state="detached", timeout=60_000)
    screenshot(page, "rep-visit-synced-phone")

    def visits() -> list[dict[str, Any]]:
        reply = ok(call(stack, "rep-a1", "GET", f"/v1/leads/{free['leadId']}/activities"))
        return [a for a in reply.get("activities", []) if a.get("summary") == marker]

    found = visits()
    assert len(found) == 1, found
    visit = found[0]
    assert visit["activityType"] == "ACTIVITY_TYPE_VISIT"
    check_in = visit["visit"]["checkIn"]
    assert check_in["photos"][0]["fileName"] == "storefront.jpg"
    assert len(check_in["photos"][0]["sha256"]) == 64
    assert abs(check_in["location"]["latitude"] - 29.8683) < 1e-3
    assert any(u["unitId"] == UNIT and u["done"] for u in visit["actionUnits"])

    # The phone never saw the answer and sends the same batch again: nothing is applied twice.
    sent = json.loads(next(b for b in reversed(batches) if marker in b))
    reply = ok(call(stack, "rep-a1", "POST", "/v1/sync:batch", sent))
    assert all(r["status"] == 200 for r in reply["results"]), reply
    assert len(visits()) == 1

    context.close()
