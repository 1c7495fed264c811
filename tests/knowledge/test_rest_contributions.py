# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""Co-creation and the monthly iteration through the REST gateway (routes from the contract's
annotations): a rep submits a case, ops accepts it into a light card, points and the leaderboard
show it; an admin runs a dry iteration; errors come back as JSON."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import httpx

from deploy.local.infra import free_port
from gateway.app import create_app
from gateway.config import GatewaySettings
from kit.config import SERVICES
from tests.gateway.conftest import serve_app
from tests.knowledge.conftest import Knowledge
from tests.knowledge.test_rest import bearer

CASE = {
    "contributionId": "rest-k1",
    "kind": "CONTRIBUTION_KIND_OBJECTION_LIST",
    "title": "预算异议清单",
    "objections": [{"objection": "今年没预算", "response": "先做试点，明年列入预算"}],
    "scenario": "budget_objection",
    "industry": "manufacturing",
    "stageId": "needs_confirmed",
}


async def test_contribution_to_light_card_through_the_gateway(knowledge: Knowledge, redis_url: str) -> None:
    addresses = {name: f"127.0.0.1:{free_port()}" for name in SERVICES}
    addresses["knowledge"] = knowledge.address
    settings = replace(GatewaySettings(addresses=addresses, redis_url=redis_url))
    async with (
        serve_app(create_app(settings=settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        r = await http.post("/v1/contributions", json=CASE, headers=bearer("rep-a1"))
        assert r.status_code == 200, r.text
        assert r.json()["contribution"]["status"] == "CONTRIBUTION_STATUS_SUBMITTED"
        r = await http.get("/v1/contributions/rest-k1", headers=bearer("rep-a2"))
        assert r.status_code == 404, r.text
        r = await http.post(
            "/v1/contributions/rest-k1:accept", json={"card": {"cardId": "rest-l1"}}, headers=bearer("rep-a1")
        )
        assert r.status_code == 403, r.text
        r = await http.post(
            "/v1/contributions/rest-k1:accept",
            json={"card": {"cardId": "rest-l1"}, "reviewComment": "很实用"},
            headers=bearer("admin"),
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["card"]["kind"] == "CARD_KIND_LIGHT" and body["card"]["sourceContributionId"] == "rest-k1"
        assert body["contribution"]["pointsAwarded"] == 11
        r = await http.get("/v1/contributorLeaderboard", headers=bearer("rep-a2"))
        assert r.status_code == 200, r.text
        assert [(e["userId"], e["points"]) for e in r.json()["entries"]] == [("rep-a1", 11)]
        r = await http.get("/v1/pointEntries", headers=bearer("rep-a1"))
        assert r.status_code == 200 and r.json()["totalPoints"] == 11, r.text
        r = await http.post(
            "/v1/pointEntries:adjust",
            json={"requestId": "rest-adj", "userId": "rep-a1", "points": 0, "note": "x"},
            headers=bearer("admin"),
        )
        assert r.status_code == 400, r.text

        today = datetime.now(UTC)
        last = {"year": today.year - (today.month == 1), "month": (today.month - 2) % 12 + 1}
        r = await http.post(
            "/v1/iterationReports:run", json={"month": last, "dryRun": True}, headers=bearer("admin")
        )
        assert r.status_code == 200, r.text
        report = r.json()["report"]
        assert report["state"] == "ITERATION_REPORT_STATE_DRY_RUN"
        r = await http.get(f"/v1/iterationReports/{report['reportId']}", headers=bearer("sup-a"))
        assert r.status_code == 200, r.text
        r = await http.get("/v1/iterationReports", headers=bearer("rep-a1"))
        assert r.status_code == 403, r.text
