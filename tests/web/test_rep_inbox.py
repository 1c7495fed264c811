"""The inbox, live: a supervisor on the phone sees an SLA breach arrive over the stream (no reload),
with the unread count in the header.

The demo data has no breached lead (the stack runs the tenant's business calendar, and a breach
takes a response window of business time; tests/e2e/test_lead_sla_flow.py covers the real
leads -> notify breach with a 40 s window). Here the condition is made through notify's API:
the breach notice for an A lead of sup-a's team, as leads sends it."""

from __future__ import annotations

from typing import Any

import pytest
from ulid import ULID

from tests.web.conftest import Stack, axe_violations, new_page, screenshot, sign_in
from tests.web.rep_api import a_lead_for, call, ok

# The first browser test of a worker also starts the stack (minutes on a busy machine).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web"), pytest.mark.timeout(900)]


def test_a_supervisor_sees_the_sla_breach_arrive_in_the_inbox(browser: Any, stack: Stack) -> None:
    lead = a_lead_for(stack, "rep-a3", "Hefei Solar Components")
    page = new_page(browser, axe=True)
    sign_in(page, stack, "sup-a")
    page.locator("header .inbox-badge").click()
    page.get_by_text("实时").wait_for(timeout=60_000)  # the stream is open

    notice = {
        "notification": {
            "notificationId": str(ULID()),
            "category": "NOTIFICATION_CATEGORY_SLA_BREACH",
            "priority": "NOTIFICATION_PRIORITY_HIGH",
            "recipients": [{"userId": "sup-a"}],
            "subject": {"service": "leads", "kind": "lead", "id": lead["leadId"]},
            "raw": {
                "title": f"首响超时 {lead['displayName']}",
                "body": "rep-a3 did not respond within the A-lead window.",
            },
        }
    }
    ok(call(stack, "admin", "POST", "/v1/notifications:send", notice))

    item = page.locator(f'li.inbox-item[data-subject="{lead["leadId"]}"]')
    item.wait_for(timeout=60_000)
    assert item.get_attribute("data-category") == "NOTIFICATION_CATEGORY_SLA_BREACH"
    assert "首响超时" in item.inner_text()
    count = page.locator("header .inbox-badge .count")
    count.wait_for()
    assert int(count.inner_text()) >= 1
    assert axe_violations(page) == []
    screenshot(page, "supervisor-inbox-breach-phone")
    page.context.close()
