"""HTTP providers: WeCom group bot, DingTalk custom bot, SMS gateway, signed generic webhook.

Each speaks the provider's own wire format. Base URLs default to the real
providers and can point elsewhere (a loopback fake in tests, a proxy in prod).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse

import httpx

from salesops.notify.v1 import channel_config_pb2
from services.notify.channels.base import Message, SendError, http_failure

WECOM_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
DINGTALK_URL = "https://oapi.dingtalk.com/robot/send"
ALIYUN_SMS_URL = "https://dysmsapi.aliyuncs.com/"


async def _post(client: httpx.AsyncClient, url: str, **kwargs: object) -> httpx.Response:
    try:
        response = await client.post(url, **kwargs)  # type: ignore[arg-type]
    except httpx.TimeoutException as exc:
        raise SendError("TIMEOUT", str(exc) or "provider timed out", permanent=False) from exc
    except httpx.TransportError as exc:
        raise SendError("UNREACHABLE", str(exc) or "provider unreachable", permanent=False) from exc
    if response.status_code >= 300:
        raise http_failure(response.status_code, response.text)
    return response


def _bot_errcode(response: httpx.Response) -> None:
    """WeCom and DingTalk answer HTTP 200 with {"errcode": n}; non-zero is a refusal."""
    try:
        data = response.json()
    except ValueError as exc:
        raise SendError("BAD_RESPONSE", response.text[:200], permanent=False) from exc
    code = int(data.get("errcode", 0))
    if code:
        # -1 = system busy, 45009 / 130101 = rate limited: worth retrying.
        transient = code in (-1, 45009, 130101)
        raise SendError(
            "PROVIDER_ERROR", str(data.get("errmsg", "")), permanent=not transient, provider_code=str(code)
        )


class WeComBot:
    def __init__(self, client: httpx.AsyncClient, base_url: str = WECOM_URL) -> None:
        self.client, self.base_url = client, base_url

    async def send(self, config: channel_config_pb2.ChannelConfig, message: Message) -> str:
        key = config.wecom_bot.webhook_key.value
        body = {
            "msgtype": "markdown",
            "markdown": {"content": f"**{message.title}**\n{message.body}\n<@{message.address}>"},
        }
        response = await _post(self.client, f"{self.base_url}?key={urllib.parse.quote(key)}", json=body)
        _bot_errcode(response)
        return message.delivery_id


class DingTalkBot:
    def __init__(self, client: httpx.AsyncClient, base_url: str = DINGTALK_URL) -> None:
        self.client, self.base_url = client, base_url

    async def send(self, config: channel_config_pb2.ChannelConfig, message: Message) -> str:
        settings = config.dingtalk_bot
        params = {"access_token": settings.access_token.value}
        if settings.signing_secret.value:
            # DingTalk's "加签": HMAC-SHA256 of "timestamp\nsecret", base64, URL-encoded.
            stamp = str(int(time.time() * 1000))
            digest = hmac.new(
                settings.signing_secret.value.encode(),
                f"{stamp}\n{settings.signing_secret.value}".encode(),
                hashlib.sha256,
            ).digest()
            params |= {"timestamp": stamp, "sign": base64.b64encode(digest).decode()}
        title = f"{settings.keyword} {message.title}".strip()
        body = {
            "msgtype": "markdown",
            "markdown": {"title": title, "text": f"### {title}\n{message.body}\n@{message.address}"},
            "at": {
                "atMobiles": [message.address] if message.address.startswith("+") else [],
                "atUserIds": [] if message.address.startswith("+") else [message.address],
            },
        }
        response = await _post(self.client, f"{self.base_url}?{urllib.parse.urlencode(params)}", json=body)
        _bot_errcode(response)
        return message.delivery_id


class SmsGateway:
    """Aliyun-style SendSms over HTTPS (JSON answer with Code "OK")."""

    def __init__(self, client: httpx.AsyncClient, base_url: str = ALIYUN_SMS_URL) -> None:
        self.client, self.base_url = client, base_url

    async def send(self, config: channel_config_pb2.ChannelConfig, message: Message) -> str:
        sms = config.sms
        params = {
            "Action": "SendSms",
            "PhoneNumbers": message.address,
            "SignName": sms.sign_name,
            "AccessKeyId": sms.access_key_id,
            "TemplateParam": json.dumps({"title": message.title[:20]}, ensure_ascii=False),
        }
        response = await _post(self.client, self.base_url, data=params)
        data = response.json()
        if data.get("Code") != "OK":
            code = str(data.get("Code", ""))
            transient = code in ("isv.BUSINESS_LIMIT_CONTROL", "Throttling")
            raise SendError(
                "PROVIDER_ERROR", str(data.get("Message", "")), permanent=not transient, provider_code=code
            )
        return str(data.get("BizId", message.delivery_id))


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class SignedWebhook:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def send(self, config: channel_config_pb2.ChannelConfig, message: Message) -> str:
        hook = config.webhook
        body = json.dumps(
            {
                "delivery_id": message.delivery_id,
                "notification_id": message.notification_id,
                "category": message.category,
                "recipient": message.address,
                "title": message.title,
                "body": message.body,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        stamp = str(int(time.time()))
        headers = dict(hook.headers) | {
            "Content-Type": "application/json",
            "X-Salesops-Timestamp": stamp,
            "X-Salesops-Delivery": message.delivery_id,
        }
        if hook.signing_secret.value:
            headers["X-Salesops-Signature"] = webhook_signature(hook.signing_secret.value, stamp, body)
        timeout = min(hook.timeout.ToTimedelta().total_seconds(), 30.0) if hook.HasField("timeout") else 10.0
        await _post(self.client, hook.url, content=body, headers=headers, timeout=timeout)
        return message.delivery_id
