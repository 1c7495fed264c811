"""Each external channel adapter against a loopback server speaking the provider's protocol."""

from __future__ import annotations

import email
import hashlib
import hmac

import httpx
import pytest
from cryptography.fernet import Fernet

from kit.net import OutboundPolicy, SafeClient
from kit.secrets import Sealer, seal
from salesops.notify.v1 import channel_config_pb2 as C
from salesops.notify.v1 import notification_pb2 as N
from services.notify.channels import registry
from services.notify.channels.base import Message, SendError
from services.notify.channels.email import SmtpEmail
from services.notify.channels.http_channels import DingTalkBot, SignedWebhook, SmsGateway, WeComBot
from tests.notify.fakes import http_provider, smtp_server

# The fakes listen on loopback: the tests allow it explicitly, as a deployment would a proxy.
LOOPBACK = OutboundPolicy.parse("127.0.0.1")
MSG = Message("D1", "N1", "sla_breach", "+8613800000001", "线索已超时", "请尽快处理")


async def test_wecom_bot_posts_markdown_with_the_key() -> None:
    async with http_provider() as fake, SafeClient(LOOPBACK) as client:
        config = C.ChannelConfig(wecom_bot=C.WeComBotSettings(webhook_key=C.Secret(value="k-123")))
        await WeComBot(client, f"{fake.url}/cgi-bin/webhook/send").send(config, MSG)
    req = fake.requests[0]
    assert req.path == "/cgi-bin/webhook/send" and req.query == {"key": "k-123"}
    body = req.json()
    assert body["msgtype"] == "markdown" and "线索已超时" in body["markdown"]["content"]


async def test_dingtalk_bot_signs_and_mentions_by_mobile() -> None:
    async with http_provider() as fake, SafeClient(LOOPBACK) as client:
        config = C.ChannelConfig(
            dingtalk_bot=C.DingTalkBotSettings(
                access_token=C.Secret(value="tok"), signing_secret=C.Secret(value="SEC"), keyword="SalesOps"
            )
        )
        await DingTalkBot(client, f"{fake.url}/robot/send").send(config, MSG)
    req = fake.requests[0]
    assert req.query["access_token"] == "tok" and req.query["sign"] and req.query["timestamp"]
    body = req.json()
    assert body["at"]["atMobiles"] == ["+8613800000001"]
    assert body["markdown"]["title"].startswith("SalesOps")


async def test_bot_errcode_is_a_refusal() -> None:
    async with http_provider(poison_marker="POISON") as fake, SafeClient(LOOPBACK) as client:
        config = C.ChannelConfig(wecom_bot=C.WeComBotSettings(webhook_key=C.Secret(value="k")))
        with pytest.raises(SendError) as err:
            await WeComBot(client, fake.url).send(config, Message("D", "N", "x", "u", "POISON", ""))
    assert err.value.permanent and err.value.code == "HTTP_400"


async def test_sms_gateway_and_transient_failures() -> None:
    async with http_provider(fail_times=1) as fake, SafeClient(LOOPBACK) as client:
        config = C.ChannelConfig(sms=C.SmsSettings(access_key_id="AK", sign_name="销售通"))
        with pytest.raises(SendError) as err:
            await SmsGateway(client, fake.url).send(config, MSG)
        assert not err.value.permanent and err.value.code == "HTTP_503"
        provider_id = await SmsGateway(client, fake.url).send(config, MSG)
    assert provider_id == "biz-2"
    form = dict(x.split("=", 1) for x in fake.requests[1].body.decode().split("&"))
    assert form["Action"] == "SendSms" and form["PhoneNumbers"] == "%2B8613800000001"


async def test_unreachable_provider_is_transient() -> None:
    async with SafeClient(LOOPBACK) as client:
        config = C.ChannelConfig(webhook=C.WebhookSettings(url="http://127.0.0.1:1/hook"))
        with pytest.raises(SendError) as err:
            await SignedWebhook(client).send(config, MSG)
    assert not err.value.permanent and err.value.code == "UNREACHABLE"


async def test_webhook_is_hmac_signed() -> None:
    async with http_provider() as fake, SafeClient(LOOPBACK) as client:
        config = C.ChannelConfig(
            webhook=C.WebhookSettings(
                url=f"{fake.url}/hook", signing_secret=C.Secret(value="s3cret"), headers={"X-Env": "test"}
            )
        )
        await SignedWebhook(client).send(config, MSG)
    req = fake.requests[0]
    stamp = req.headers["x-salesops-timestamp"]
    expected = hmac.new(b"s3cret", stamp.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    assert req.headers["x-salesops-signature"] == f"v1={expected}"
    assert req.headers["x-env"] == "test"
    assert req.json()["title"] == "线索已超时"


async def test_email_over_smtp_and_its_failure_classes() -> None:
    async with smtp_server(fail_times=1) as fake:
        config = C.ChannelConfig(
            email=C.EmailSettings(
                host="127.0.0.1",
                port=fake.port,
                security=C.SMTP_SECURITY_NONE,
                from_address="noreply@salesops.test",
                from_name="SalesOps",
            )
        )
        mail = Message("D1", "N1", "digest", "rep@example.com", "今日摘要", "今日到期 3 项")
        with pytest.raises(SendError) as err:
            await SmtpEmail(LOOPBACK).send(config, mail)
        assert not err.value.permanent and err.value.code == "SMTP_451"
        msg_id = await SmtpEmail(LOOPBACK).send(config, mail)
        with pytest.raises(SendError) as bad:
            await SmtpEmail(LOOPBACK).send(config, Message("D2", "N1", "digest", "not-an-address", "t", "b"))
        assert bad.value.permanent
    sender, rcpts, data = fake.messages[0]
    assert sender == "noreply@salesops.test" and rcpts == ["rep@example.com"]
    parsed = email.message_from_bytes(data)
    assert parsed["Message-ID"] == msg_id and parsed["X-Salesops-Delivery"] == "D1"
    assert "今日摘要" in str(email.header.make_header(email.header.decode_header(parsed["Subject"])))


async def test_provider_answers_never_come_back() -> None:
    async with http_provider(fail_times=1) as fake, SafeClient(LOOPBACK) as client:
        config = C.ChannelConfig(webhook=C.WebhookSettings(url=f"{fake.url}/hook"))
        with pytest.raises(SendError) as err:
            await SignedWebhook(client).send(config, MSG)
        fake.poison_marker = "POISON"
        with pytest.raises(SendError) as refused:
            await WeComBot(client, fake.url).send(
                C.ChannelConfig(wecom_bot=C.WeComBotSettings(webhook_key=C.Secret(value="k"))),
                Message("D", "N", "x", "u", "POISON", ""),
            )
    assert err.value.message == "5xx" and "provider down" not in str(err.value)
    assert refused.value.message == "4xx" and "invalid payload" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/hook",
        "http://127.0.0.1@example.com/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[64:ff9b::a9fe:a9fe]/hook",
        "http://2130706433/hook",
        "https://localhost/hook",
    ],
)
async def test_webhooks_to_refused_destinations_are_permanent_failures(url: str) -> None:
    async with SafeClient(OutboundPolicy()) as client:
        with pytest.raises(SendError) as err:
            await SignedWebhook(client).send(C.ChannelConfig(webhook=C.WebhookSettings(url=url)), MSG)
    assert err.value.code == "BLOCKED" and err.value.permanent and err.value.outcome == "blocked"


async def test_an_ordinary_client_is_not_used_for_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SALESOPS_OUTBOUND_ALLOW", raising=False)
    async with http_provider() as fake, httpx.AsyncClient() as plain:
        config = C.ChannelConfig(webhook=C.WebhookSettings(url=f"{fake.url}/hook"))
        with pytest.raises(SendError) as err:
            await registry.adapters(plain)[N.CHANNEL_WEBHOOK].send(config, MSG)
    assert err.value.code == "BLOCKED" and fake.requests == []


async def test_webhook_idempotency_key_and_sealed_secrets() -> None:
    async with http_provider() as fake, SafeClient(LOOPBACK) as client:
        config = C.ChannelConfig(
            webhook=C.WebhookSettings(
                url=f"{fake.url}/hook",
                signing_secret=C.Secret(value=seal("s3cret")),
                headers={"Authorization": seal("Bearer partner-token")},
            )
        )
        await SignedWebhook(client).send(config, MSG, idempotency_key="D1-attempt-key")
        await SignedWebhook(client).send(config, MSG)
    first, second = fake.requests
    assert first.headers["idempotency-key"] == first.headers["webhook-id"] == "D1-attempt-key"
    assert second.headers["idempotency-key"] == "D1"  # the delivery id by default
    assert first.headers["authorization"] == "Bearer partner-token"
    expected = hmac.new(
        b"s3cret", first.headers["x-salesops-timestamp"].encode() + b"." + first.body, hashlib.sha256
    )
    assert first.headers["x-salesops-signature"] == f"v1={expected.hexdigest()}"


async def test_sms_carries_the_delivery_as_out_id() -> None:
    async with http_provider() as fake, SafeClient(LOOPBACK) as client:
        config = C.ChannelConfig(sms=C.SmsSettings(access_key_id="AK", sign_name="销售通"))
        await SmsGateway(client, fake.url).send(config, MSG, idempotency_key="KEY-1")
    assert "OutId=KEY-1" in fake.requests[0].body.decode()


@pytest.mark.parametrize(
    ("host", "port"), [("10.0.0.1", 587), ("169.254.169.254", 25), ("localhost", 587), ("8.8.8.8", 6379)]
)
async def test_smtp_destinations_are_checked(host: str, port: int) -> None:
    config = C.ChannelConfig(
        email=C.EmailSettings(host=host, port=port, from_address="noreply@salesops.test")
    )
    with pytest.raises(SendError) as err:
        await SmtpEmail(OutboundPolicy()).send(config, Message("D", "N", "x", "rep@example.com", "t", "b"))
    assert err.value.code == "BLOCKED" and err.value.permanent


async def test_smtp_message_id_follows_the_delivery_and_replies_stay_private() -> None:
    async with smtp_server(fail_times=1, fail_reply="451 4.3.0 internal relay mx7.corp refused") as fake:
        config = C.ChannelConfig(
            email=C.EmailSettings(
                host="127.0.0.1",
                port=fake.port,
                security=C.SMTP_SECURITY_NONE,
                from_address="n@salesops.test",
            )
        )
        mail = Message("D9", "N1", "digest", "rep@example.com", "t", "b")
        with pytest.raises(SendError) as err:
            await SmtpEmail(LOOPBACK).send(config, mail)
        assert err.value.message == "4xx" and "mx7.corp" not in str(err.value)
        first = await SmtpEmail(LOOPBACK).send(config, mail, idempotency_key="D9")
        again = await SmtpEmail(LOOPBACK).send(config, mail)
    assert first == again == "<D9@salesops.test>"


async def test_configured_headers_cannot_take_over_the_request() -> None:
    async with http_provider() as fake, SafeClient(LOOPBACK) as client:
        headers = {
            "Host": "internal.admin",
            "Content-Length": "0",
            "Transfer-Encoding": "chunked",
            "X-Salesops-Signature": "v1=forged",
            "Idempotency-Key": "forged",
            "X-Bad": "a\r\nInjected: 1",
            "X-Wide": "值",
            "X-Env": "test",
        }
        config = C.ChannelConfig(webhook=C.WebhookSettings(url=f"{fake.url}/hook", headers=headers))
        await SignedWebhook(client).send(config, MSG)
    req = fake.requests[0]
    assert req.headers["host"] == f"127.0.0.1:{fake.url.rsplit(':', 1)[1]}"
    assert "x-salesops-signature" not in req.headers and req.headers["idempotency-key"] == "D1"
    assert (
        "x-bad" not in req.headers
        and "x-wide" not in req.headers
        and "injected" not in req.headers
        and req.headers["x-env"] == "test"
    )
    assert req.json()["title"] == "线索已超时"


async def test_smtp_passwords_need_tls_outside_the_allow_list() -> None:
    config = C.ChannelConfig(
        email=C.EmailSettings(
            host="8.8.8.8",
            port=587,
            security=C.SMTP_SECURITY_NONE,
            username="u",
            password=C.Secret(value="p"),
            from_address="n@salesops.test",
        )
    )
    with pytest.raises(SendError) as err:
        await SmtpEmail(OutboundPolicy()).send(config, Message("D", "N", "x", "rep@example.com", "t", "b"))
    assert err.value.code == "INSECURE_LOGIN" and err.value.permanent


async def test_a_secret_sealed_under_another_key_is_a_permanent_failure() -> None:
    foreign = Sealer([Fernet.generate_key().decode()]).seal("s3cret")
    async with http_provider() as fake, SafeClient(LOOPBACK) as client:
        config = C.ChannelConfig(
            webhook=C.WebhookSettings(url=f"{fake.url}/hook", signing_secret=C.Secret(value=foreign))
        )
        with pytest.raises(SendError) as err:
            await SignedWebhook(client).send(config, MSG)
    assert err.value.code == "SECRET_UNREADABLE" and err.value.permanent and fake.requests == []


async def test_line_breaks_in_mail_headers_are_refused() -> None:
    config = C.ChannelConfig(
        email=C.EmailSettings(
            host="127.0.0.1", port=2525, security=C.SMTP_SECURITY_NONE, from_address="n@s.test"
        )
    )
    with pytest.raises(SendError) as err:
        await SmtpEmail(LOOPBACK).send(
            config, Message("D", "N", "x", "a@b.test", "hi\r\nBcc: all@corp.test", "b")
        )
    assert err.value.code == "BAD_MESSAGE" and err.value.permanent
