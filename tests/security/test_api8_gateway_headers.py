"""OWASP API8 (misconfiguration) at the gateway: answers name no server software.

uvicorn adds `server: uvicorn` to every answer unless told otherwise; a scanner then
knows which server (and which of its published bugs) it is talking to.
"""

from __future__ import annotations

from tests.gateway.conftest import auth, running_gateway


async def test_no_answer_names_the_server_software(redis_url: str) -> None:
    async with running_gateway(redis_url) as gw:
        answers = [
            await gw.client.get("/healthz"),
            await gw.client.get("/v1/whoami", headers=auth("rep-1")),
            await gw.client.get("/v1/whoami"),  # 401
            await gw.client.get("/v1/no-such-route", headers=auth("rep-1")),  # 404
            await gw.client.get("/docs/static/../../etc/passwd"),
        ]
        for r in answers:
            assert "server" not in r.headers, (r.request.url, r.headers.get("server"))
            assert "uvicorn" not in r.text.lower() and "starlette" not in r.text.lower()
