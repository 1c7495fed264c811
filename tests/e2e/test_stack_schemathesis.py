"""Property-based run against `/openapi.json` of the whole running stack: the built services
(leads, notify) and the gateway answer generated requests with no 5xx and schema-valid bodies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_local_stack import _start, _stop, _wait_ready
from tests.gateway.test_openapi import _fuzz

pytestmark = [pytest.mark.slow]


def test_generated_requests_find_no_server_error_on_the_running_stack(tmp_path: Path) -> None:
    proc = _start(tmp_path / "var", tmp_path / "tokens.json")
    try:
        _wait_ready(proc)
        info = json.loads((tmp_path / "tokens.json").read_text())
        gateway, tokens = str(info["gateway"]), info["tokens"]
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
    finally:
        if proc.poll() is None:
            _stop(proc)
