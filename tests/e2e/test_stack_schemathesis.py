"""Property-based run against `/openapi.json` of the whole running stack: the built services
(leads, notify) and the gateway answer generated requests with no 5xx and schema-valid bodies.
It runs on the shared stack after the other tests there, on the data they left."""

from __future__ import annotations

from tests.e2e.shared_stack import MARKS_LAST, SharedStack
from tests.gateway.test_openapi import _fuzz

pytestmark = MARKS_LAST  # on the shared stack, after the tests that rely on its data


def test_generated_requests_find_no_server_error_on_the_running_stack(shared_stack: SharedStack) -> None:
    gateway, tokens = shared_stack.gateway, shared_stack.tokens
    seen: list[int] = []
    for user in ("admin", "rep-a1"):
        headers = {"Authorization": f"Bearer {tokens[user]}"}
        # Leads and notify operations, except the live stream (it never ends by design).
        seen += _fuzz(
            gateway,
            r"^/v1/(?!sync|inbox:stream)(leads|inbox|notifications|users|"
            r"notificationTemplates|channelConfigs|escalationPolicies|subscribers|devices|"
            r"notifySettings|gradingRules|routingRules|poolRules|slaPolicies|intakePolicy|"
            r"followUpPolicy|repProfiles|attentionItems|leadMetrics|dormantLeads)",
            4,
            headers,
        )
    assert 200 in seen and len(seen) > 100
