"""WeCom / DingTalk group-bot connectors: TestConnector posts a real test message through the adapter
to a loopback bot that answers like theirs (errcode JSON, DingTalk's signature, the 20-a-minute cap)."""

from __future__ import annotations

from google.protobuf.struct_pb2 import Struct

from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import integration_service_pb2 as pb
from tests.integration.conftest import Integration
from tests.notify.bot_fakes import fake_bot

SECRET = "SECd1f2c3b4a5968778695a4b3c2d1e0f"


def bot(
    connector_id: str, provider: str, base_url: str, secrets: dict[str, str], **settings: str
) -> c.Connector:
    values = Struct()
    values.update({"base_url": base_url, **settings})
    return c.Connector(
        connector_id=connector_id,
        display_name=f"{provider} sales group",
        kind=c.CONNECTOR_KIND_MESSAGING,
        provider=provider,
        settings=values,
        secrets=secrets,
    )


async def run_test(integration: Integration, connector_id: str) -> c.ConnectionTestResult:
    done = await integration.call("TestConnector", pb.TestConnectorRequest(connector_id=connector_id))
    return done.result


async def test_dingtalk_bot_test_message_is_signed_and_posted(integration: Integration) -> None:
    async with fake_bot(secrets={"tok-1": SECRET}) as fake:
        good = bot(
            "ding-1",
            "dingtalk_bot",
            fake.url,
            {"access_token": "tok-1", "signing_secret": SECRET},
            keyword="SalesOps",
        )
        await integration.call("CreateConnector", pb.CreateConnectorRequest(connector=good))
        result = await run_test(integration, "ding-1")
        assert result.ok and [ch.name for ch in result.checks] == ["post"]
        assert [p.text for p in fake.posts] == ["SalesOps SalesOps connection test"]
        # The wrong signing secret: DingTalk answers errcode 310000, and the connector is failing.
        bad = bot("ding-2", "dingtalk_bot", fake.url, {"access_token": "tok-1", "signing_secret": "SECwrong"})
        await integration.call("CreateConnector", pb.CreateConnectorRequest(connector=bad))
        refused = await run_test(integration, "ding-2")
        assert not refused.ok and "errcode 310000" in refused.checks[0].message
    got = await integration.call("GetConnector", pb.GetConnectorRequest(connector_id="ding-2"))
    assert got.connector.health == c.CONNECTOR_HEALTH_FAILING
    assert sorted(got.connector.secret_names) == ["access_token", "signing_secret"]
    assert SECRET not in str(got) and "SECwrong" not in str(got)
    healthy = await integration.call("GetConnector", pb.GetConnectorRequest(connector_id="ding-1"))
    assert healthy.connector.health == c.CONNECTOR_HEALTH_HEALTHY


async def test_wecom_bot_over_its_cap_says_so(integration: Integration) -> None:
    async with fake_bot(limited_times=1) as fake:
        conn = bot("wecom-1", "wecom_bot", fake.url, {"webhook_key": "key-1"})
        await integration.call("CreateConnector", pb.CreateConnectorRequest(connector=conn))
        limited = await run_test(integration, "wecom-1")
        assert not limited.ok and "errcode 45009" in limited.checks[0].message
        assert "20 messages a minute" in limited.checks[0].message
        posted = await run_test(integration, "wecom-1")  # a minute later (the fake's refusal was a one-off)
        assert posted.ok and len(fake.posts) == 1 and "key-1" not in posted.checks[0].message
