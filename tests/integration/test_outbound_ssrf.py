"""SSRF table for outbound webhooks: every internal address form refused at registration and at delivery.

Loopback, private, link-local, CGNAT, multicast, cloud metadata (IPv4 and IPv6),
IPv4-mapped IPv6 and NAT64 forms; a name whose DNS answer is private; a redirect to
the metadata address (never followed). Loopback only with the embedded-mode
setting SALESOPS_OUTBOUND_ALLOW_LOOPBACK, which production refuses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from kit.errors import InvalidArgument
from kit.net import OutboundPolicy, PolicyError, SafeClient, check_address
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import webhooks_pb2 as wh
from services.integration.api.outbound import OutboundWebhooksApi
from services.integration.delivery_attempts import Prepared, post
from services.integration.domain import outbound
from tests.integration.outbound_support import LOOPBACK, receiver, stack, subscription

pytestmark = pytest.mark.timeout(120)
NOW = datetime(2026, 12, 6, tzinfo=UTC)

INTERNAL = {
    "loopback v4": "https://127.0.0.1/hook",
    "loopback v4 range": "https://127.10.20.30/hook",
    "loopback v6": "https://[::1]/hook",
    "private 10/8": "https://10.0.0.5/hook",
    "private 172.16/12": "https://172.16.1.1/hook",
    "private 192.168/16": "https://192.168.1.1/hook",
    "unique local v6": "https://[fd12:3456::1]/hook",
    "link-local v4": "https://169.254.10.1/hook",
    "link-local v6": "https://[fe80::1]/hook",
    "CGNAT 100.64/10": "https://100.64.0.1/hook",
    "CGNAT top": "https://100.127.255.254/hook",
    "multicast v4": "https://224.0.0.1/hook",
    "multicast v6": "https://[ff02::1]/hook",
    "metadata v4": "https://169.254.169.254/latest/meta-data",
    "metadata v6 (AWS)": "https://[fd00:ec2::254]/latest/meta-data",
    "IPv4-mapped loopback": "https://[::ffff:127.0.0.1]/hook",
    "IPv4-mapped private": "https://[::ffff:10.0.0.1]/hook",
    "IPv4-mapped metadata": "https://[::ffff:169.254.169.254]/hook",
    "NAT64 loopback": "https://[64:ff9b::7f00:1]/hook",
    "NAT64 metadata": "https://[64:ff9b::a9fe:a9fe]/hook",
    "NAT64 private": "https://[64:ff9b::a00:1]/hook",
    "unspecified": "https://0.0.0.0/hook",
    "localhost name": "https://localhost/hook",
    "decimal loopback": "https://2130706433/hook",
    "plain http": "http://partner.example.com/hook",
}


class FakeDns:
    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        return self.answers


async def test_refused_at_registration(database_url: str) -> None:
    async with stack(database_url) as s:  # the production policy: no allow list, no loopback setting
        for form, url in INTERNAL.items():
            request = pb.CreateWebhookSubscriptionRequest(subscription=subscription(url))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await s.call("CreateWebhookSubscription", request)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, form
            assert "subscription.endpoint_url" in (err.value.details() or "") + str(
                err.value.trailing_metadata()
            )
        create = pb.CreateWebhookSubscriptionRequest(
            subscription=subscription("https://partner.example.com/h")
        )
        await s.call("CreateWebhookSubscription", create)
        for form, url in INTERNAL.items():  # and when the URL changes
            moved = wh.WebhookSubscription(subscription_id="sub-1", endpoint_url=url)
            update = pb.UpdateWebhookSubscriptionRequest(
                subscription=moved, update_mask=FieldMask(paths=["endpoint_url"])
            )
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await s.call("UpdateWebhookSubscription", update)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, form


@pytest.mark.parametrize(
    "answer", ["10.1.2.3", "127.0.0.1", "169.254.169.254", "100.64.1.1", "::ffff:10.0.0.1"]
)
async def test_a_name_answering_a_private_address_is_refused_at_registration(answer: str) -> None:
    api = OutboundWebhooksApi(SimpleNamespace(db=None))  # type: ignore[arg-type]
    api._client = SafeClient(OutboundPolicy(), resolver=FakeDns("93.184.216.34", answer))
    with pytest.raises(InvalidArgument, match="not public"):
        await api._check_endpoint("https://partner.example.com/hook")
    api._client = SafeClient(OutboundPolicy(), resolver=FakeDns("93.184.216.34"))
    await api._check_endpoint("https://partner.example.com/hook")  # a public answer passes


@pytest.mark.parametrize("url", list(INTERNAL.values())[:22], ids=list(INTERNAL.keys())[:22])
async def test_refused_again_at_delivery_nothing_sent(url: str) -> None:
    async with SafeClient(OutboundPolicy()) as client:
        answer = await post(client, Prepared(url, {}, b"{}", 2.0, 1), NOW)
    assert answer.status == 0 and answer.error.startswith("refused by the outbound policy")
    assert outbound.decide(
        attempt=1, max_attempts=0, status=0, after=None, failing_since=None, now=NOW
    ).outcome is (outbound.Outcome.RETRY)


async def test_dns_moving_to_a_private_address_after_registration_is_refused_at_delivery() -> None:
    async with receiver() as r, SafeClient(OutboundPolicy(), resolver=FakeDns("127.0.0.1")) as client:
        answer = await post(
            client, Prepared(f"https://partner.example.com:{r.port}/hook", {}, b"{}", 2.0, 1), NOW
        )
    assert answer.status == 0 and "not public" in answer.error and "127.0.0.1" not in answer.error
    assert r.seen == []


async def test_a_redirect_to_the_metadata_address_is_not_followed() -> None:
    async with receiver() as r, SafeClient(LOOPBACK) as client:
        answer = await post(client, Prepared(f"http://127.0.0.1:{r.port}/moved", {}, b"{}", 5.0, 1), NOW)
    assert answer.status == 302 and len(r.seen) == 1  # one request, to the endpoint only
    assert outbound.decide(
        attempt=1, max_attempts=0, status=302, after=None, failing_since=None, now=NOW
    ).outcome is (outbound.Outcome.RETRY)


def test_loopback_only_with_the_embedded_setting() -> None:
    strict = OutboundPolicy.from_env({})
    embedded = OutboundPolicy.from_env({"SALESOPS_OUTBOUND_ALLOW_LOOPBACK": "1"})
    for address in ("127.0.0.1", "127.0.0.53", "::1"):
        assert check_address(address, 8080, strict)
        assert check_address(address, 8080, embedded) == ""
    for address in ("10.0.0.1", "169.254.169.254", "fd00:ec2::254", "100.64.0.1", "::ffff:169.254.169.254"):
        assert check_address(ipaddress.ip_address(address), 443, embedded), address  # loopback only
    assert OutboundPolicy.from_env({"SALESOPS_OUTBOUND_ALLOW_LOOPBACK": "0"}).allow == ()


@pytest.mark.parametrize(
    "env",
    [
        {"SALESOPS_OUTBOUND_ALLOW_LOOPBACK": "1"},
        {"SALESOPS_OUTBOUND_ALLOW": "127.0.0.1"},
        {"SALESOPS_OUTBOUND_ALLOW": "127.0.0.0/8"},
        {"SALESOPS_OUTBOUND_ALLOW": "[::1]:8443"},
        {"SALESOPS_OUTBOUND_ALLOW": "localhost"},
    ],
)
def test_production_refuses_loopback(env: dict[str, str]) -> None:
    with pytest.raises(PolicyError, match="production"):
        OutboundPolicy.from_env({**env, "SALESOPS_ENV": "production"})
    OutboundPolicy.from_env(env)  # embedded: fine
    assert OutboundPolicy.from_env(
        {"SALESOPS_ENV": "production", "SALESOPS_OUTBOUND_ALLOW": "10.20.0.0/16"}
    ).allow


async def test_embedded_loopback_registration_and_delivery(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALESOPS_OUTBOUND_ALLOW_LOOPBACK", "1")
    async with stack(database_url) as s, receiver() as r:
        made = await s.call(
            "CreateWebhookSubscription", pb.CreateWebhookSubscriptionRequest(subscription=subscription(r.url))
        )
        assert made.subscription.endpoint_url == r.url
        tested = await s.call(
            "TestWebhookSubscription", pb.TestWebhookSubscriptionRequest(subscription_id="sub-1")
        )
    assert tested.ok and len(r.seen) == 1
