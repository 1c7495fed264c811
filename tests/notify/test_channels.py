"""Each external channel adapter against a loopback server speaking the provider's protocol."""

from __future__ import annotations

import email
import hashlib
import hmac

import pytest

from kit.net import OutboundPolicy, SafeClient
from salesops.notify.v1 import channel_config_pb2 as C
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
