"""ExchangePartnerKey over REST: the gateway forwards the methods kit.grpc.public lists without a
bearer (any Authorization sent is not read), every other route still needs one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kit.auth import TokenVerifier
from kit.grpc.public import PUBLIC_METHODS
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import partner_pb2 as p
from tests.integration.conftest import CONFIG
from tests.integration.test_end_to_end import Stack, md, stack  # noqa: F401  (the fixture)
from tests.integration.test_partner_keys import ts


async def test_the_exchange_needs_no_bearer_through_the_gateway(stack: Stack) -> None:  # noqa: F811
    key = p.PartnerKey(
        key_id="01JPK0000000000000000000G1",
        partner_name="Kingdee",
        display_name="ERP",
        scopes=["leads.read"],
        expire_time=ts(datetime.now(UTC) + timedelta(days=30)),
    )
    created = await stack.integration.CreatePartnerKey(
        pb.CreatePartnerKeyRequest(partner_key=key), metadata=md(), timeout=30
    )
    answer = await stack.gateway.post("/v1/partnerKeys:exchange", json={"secret": created.secret})
    assert answer.status_code == 200, answer.text
    who = TokenVerifier(CONFIG).verify(answer.json()["accessToken"])
    assert (who.user_id, set(who.roles)) == (f"partner:{key.key_id}", {"partner"})
    # A bearer sent along is ignored, never verified (a garbage one does not turn it into a 401).
    again = await stack.gateway.post(
        "/v1/partnerKeys:exchange",
        json={"secret": created.secret},
        headers={"Authorization": "Bearer garbage"},
    )
    assert again.status_code == 200, again.text
    wrong = await stack.gateway.post("/v1/partnerKeys:exchange", json={"secret": "so_test_nope"})
    assert wrong.status_code == 401 and "bearer" not in wrong.headers.get("www-authenticate", "").lower()
    # Everything else is unchanged: no bearer, 401.
    assert (await stack.gateway.get("/v1/partnerKeys")).status_code == 401
    assert f"/{pb.DESCRIPTOR.services_by_name['IntegrationService'].full_name}/ExchangePartnerKey" in (
        PUBLIC_METHODS
    )
