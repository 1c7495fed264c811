# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""SOP cards through the REST gateway (routes from the contract's annotations) to a real knowledge
server: ops writes and publishes a card, a rep searches in Chinese and reads it, versions and
errors come back as JSON."""

from __future__ import annotations

from dataclasses import replace

import httpx

from deploy.local.infra import free_port
from gateway.app import create_app
from gateway.config import GatewaySettings
from kit.config import SERVICES
from tests.gateway.conftest import serve_app
from tests.knowledge.conftest import Knowledge, token


def bearer(user: str, tenant: str = "demo") -> dict[str, str]:
    return {"authorization": f"Bearer {token(user, tenant)}"}


CARD = {
    "cardId": "rest-1",
    "title": "预算不够时怎么谈",
    "scenario": "budget_objection",
    "summary": "客户说今年没有预算时，区分真没预算和优先级不够。",
    "mustDoActions": [{"text": "问清预算的审批周期", "example": "今年的预算是什么时候定的？"}],
    "taboos": ["不要直接打折"],
    "industries": ["manufacturing"],
    "stageIds": ["needs_confirmed"],
    "tags": ["budget"],
}


async def test_a_card_walk_through_the_gateway(knowledge: Knowledge, redis_url: str) -> None:
    addresses = {name: f"127.0.0.1:{free_port()}" for name in SERVICES}
    addresses["knowledge"] = knowledge.address
    settings = replace(GatewaySettings(addresses=addresses, redis_url=redis_url))
    async with (
        serve_app(create_app(settings=settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        r = await http.post("/v1/sopCards", json=CARD, headers=bearer("rep-a1"))
        assert r.status_code == 403, r.text  # reps contribute field cases, they do not write cards
        r = await http.post("/v1/sopCards", json=CARD, headers=bearer("sup-a"))
        assert r.status_code == 200, r.text
        assert r.json()["card"]["status"] == "CARD_STATUS_DRAFT"
        r = await http.post("/v1/sopCards/rest-1:publish", json={}, headers=bearer("admin"))
        assert r.status_code == 400, r.text  # FAILED_PRECONDITION: still a draft
        r = await http.post(
            "/v1/sopCards/rest-1:submitForReview", json={"note": "ok"}, headers=bearer("sup-a")
        )
        assert r.status_code == 200, r.text
        r = await http.get("/v1/sopCards/rest-1", headers=bearer("rep-a1"))
        assert r.status_code == 404, r.text  # in review: not served to reps
        r = await http.post(
            "/v1/sopCards/rest-1:publish", json={"changeNote": "first"}, headers=bearer("admin")
        )
        assert r.status_code == 200, r.text
        assert r.json()["version"]["version"] == 1 and r.json()["card"]["status"] == "CARD_STATUS_PUBLISHED"

        r = await http.get("/v1/sopCards:search", params={"query": "预算"}, headers=bearer("rep-a1"))
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [x["card"]["cardId"] for x in results] == ["rest-1"]
        assert results[0]["highlights"][0] == "<em>预算</em>不够时怎么谈"
        r = await http.get(
            "/v1/sopCards:search",
            params={"query": "budget", "filter.industry": "retail"},
            headers=bearer("rep-a1"),
        )
        assert r.status_code == 200 and r.json().get("results", []) == [], r.text
        r = await http.get(
            "/v1/sopCards", params={"filter.stageId": "needs_confirmed"}, headers=bearer("rep-a1")
        )
        assert [c["cardId"] for c in r.json()["cards"]] == ["rest-1"], r.text
        r = await http.get("/v1/sopCards/rest-1/versions/1", headers=bearer("rep-a1"))
        assert r.status_code == 200 and r.json()["version"]["card"]["title"] == CARD["title"], r.text
        r = await http.get("/v1/sopCards/rest-1/statusChanges", headers=bearer("admin"))
        changes = r.json()["statusChanges"]
        assert [c["toStatus"] for c in changes] == [
            "CARD_STATUS_DRAFT",
            "CARD_STATUS_IN_REVIEW",
            "CARD_STATUS_PUBLISHED",
        ], r.text
        r = await http.post("/v1/sopCards/rest-1:retire", json={"reason": ""}, headers=bearer("admin"))
        assert r.status_code == 400, r.text  # a reason is required
        r = await http.post(
            "/v1/sopCards/rest-1:retire", json={"reason": "superseded"}, headers=bearer("admin")
        )
        assert r.status_code == 200 and r.json()["card"]["status"] == "CARD_STATUS_RETIRED", r.text
        r = await http.get("/v1/sopCards/rest-1", headers=bearer("admin", tenant="acme"))
        assert r.status_code == 404, r.text
