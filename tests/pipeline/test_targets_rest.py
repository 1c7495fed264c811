"""Targets through the REST gateway (routes from the contract's annotations) to a real pipeline server:
hand a target down, the rep signs it, the cascade and the forecast's coverage read back as JSON."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import httpx

from deploy.local.infra import free_port
from gateway.app import create_app
from gateway.config import GatewaySettings
from kit.config import SERVICES
from tests.gateway.conftest import serve_app
from tests.pipeline.conftest import Pipeline, token
from tests.pipeline.test_targets import profiles

YEAR = date.today().year + 1
QUARTER = {"granularity": "PERIOD_GRANULARITY_QUARTER", "startDate": {"year": YEAR, "month": 2, "day": 1}}
QUERY = {"period.granularity": "PERIOD_GRANULARITY_QUARTER", "period.startDate.year": str(YEAR)}
QUERY |= {"period.startDate.month": "2", "period.startDate.day": "1"}


def bearer(user: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token(user)}"}


def cny(minor: int) -> dict[str, object]:
    return {"amountMinor": str(minor), "currency": "CNY"}


async def test_a_target_walk_through_the_gateway(pipeline: Pipeline, redis_url: str) -> None:
    await profiles(pipeline)
    addresses = {name: f"127.0.0.1:{free_port()}" for name in SERVICES}
    addresses["pipeline"] = pipeline.address
    settings = replace(GatewaySettings(addresses=addresses, redis_url=redis_url))
    async with (
        serve_app(create_app(settings=settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        company = {
            "targetId": "co",
            "period": QUARTER,
            "level": "ORG_LEVEL_COMPANY",
            "committedAmount": cny(1000),
        }
        r = await http.post("/v1/targets", json=company, headers=bearer("admin"))
        assert r.status_code == 200, r.text
        assert (
            r.json()["target"]["ownerUserId"] == "admin"
            and r.json()["target"]["status"] == "TARGET_STATUS_ASSIGNED"
        )
        rep = {
            "targetId": "a1",
            "period": QUARTER,
            "level": "ORG_LEVEL_REP",
            "userId": "rep-a1",
            "committedAmount": cny(800),
        }
        r = await http.post("/v1/targets", json=rep, headers=bearer("sup-a"))
        assert r.status_code == 200, r.text
        assert r.json()["target"]["parentTargetId"] == "co"
        r = await http.post("/v1/targets", json=rep | {"targetId": "a1x"}, headers=bearer("sup-a"))
        assert r.status_code == 409, r.text  # one target per rep and period
        r = await http.post(
            "/v1/targets/a1:sign", json={"committedAmount": cny(800)}, headers=bearer("sup-a")
        )
        assert r.status_code == 403, r.text  # only the assignee signs
        r = await http.post(
            "/v1/targets/a1:sign", json={"committedAmount": cny(800)}, headers=bearer("rep-a1")
        )
        assert r.status_code == 200, r.text
        assert r.json()["target"]["status"] == "TARGET_STATUS_COMMITTED"
        r = await http.get("/v1/targets/a1", headers=bearer("rep-a2"))
        assert r.status_code == 404, r.text

        r = await http.get("/v1/targetCascade", params=QUERY, headers=bearer("admin"))
        assert r.status_code == 200, r.text
        root = r.json()["cascade"]["root"]
        assert root["childrenCommittedAmount"]["amountMinor"] == "800"
        assert abs(root["attritionRatio"] - 0.2) < 1e-9

        r = await http.get("/v1/forecast", params=QUERY, headers=bearer("rep-a1"))
        assert r.status_code == 200, r.text
        totals = r.json()["forecast"]["totals"]
        assert totals["targetAmount"]["amountMinor"] == "800"
        assert totals["coverageState"] == "COVERAGE_STATE_MEASURED" and totals["coverageRatio"] == 0
