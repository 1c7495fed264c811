"""HTTP providers: WeCom group bot, DingTalk custom bot, SMS gateway, signed generic webhook.

Each speaks the provider's own wire format and goes out through kit.net (checked,
resolved-once, pinned connections; no redirects; capped answers). Base URLs default
to the real providers and can point elsewhere (a loopback fake in tests, a proxy in
prod) as long as the outbound policy allows it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import urllib.parse
from typing import Any

import httpx

from kit.net import OutboundError, OutboundPolicy, Resolver, SafeClient, request
from salesops.notify.v1 import channel_config_pb2
from services.notify.channels.base import Message, SendError, http_failure, no_answer, opened, token

WECOM_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
DINGTALK_URL = "https://oapi.dingtalk.com/robot/send"
ALIYUN_SMS_URL = "https://dysmsapi.aliyuncs.com/"


def safe_client(
    client: httpx.AsyncClient | None, policy: OutboundPolicy | None = None, resolver: Resolver | None = None
) -> SafeClient:
    """The client adapters send with. An ordinary httpx client is not used for connections
    (it would skip every check): a SafeClient under `policy` (default: the environment's) is."""
    if isinstance(client, SafeClient) and policy is None:
        return client
    return SafeClient(policy or OutboundPolicy.from_env(), resolver=resolver)


async def _post(client: SafeClient, url: str, *, timeout: float = 10.0, **kwargs: Any) -> Any:
    """The provider's JSON answer when it accepted the request (2xx); SendError otherwise."""
    try:
        answer = await request(client, "POST", url, timeout=timeout, **kwargs)
    except OutboundError as exc:
        raise no_answer(exc) from None
    if not 200 <= answer.status < 300:
        raise http_failure(answer.status)
    return answer


def _json(answer: Any) -> dict[str, Any]:
    try:
        data = answer.json()
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        data = None
    if not isinstance(data, dict):
        raise SendError("BAD_RESPONSE", "2xx", permanent=False)
    return data


def _bot_errcode(data: dict[str, Any]) -> None:
    """WeCom and DingTalk answer HTTP 200 with {"errcode": n}; non-zero is a refusal."""
    try:
        code = int(data.get("errcode", 0))
    except (TypeError, ValueError, OverflowError):  # OverflowError: 1e400 parses as infinity
        raise SendError("BAD_RESPONSE", "2xx", permanent=False) from None
    if code:
        # -1 = system busy, 45009 / 130101 = rate limited: worth retrying. errmsg stays here.
        transient = code in (-1, 45009, 130101)
        raise SendError("PROVIDER_ERROR", "2xx", permanent=not transient, provider_code=str(code))


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk custom robot "加签": base64 of HMAC-SHA256 under the secret of "<timestamp ms>\\n<secret>".

    Sent as the `timestamp` and `sign` query parameters (urlencode escapes the base64's + / =);
    DingTalk refuses a timestamp more than an hour from its clock.
    """
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class _Provider:
    """An HTTP provider at a fixed address (tests point it at a loopback fake), reached through kit.net."""

    DEFAULT_URL = ""

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        base_url: str = "",
        *,
        policy: OutboundPolicy | None = None,
    ) -> None:
        self.client, self.base_url = safe_client(client, policy), base_url or self.DEFAULT_URL


class WeComBot(_Provider):
    DEFAULT_URL = WECOM_URL

    async def send(
        self, config: channel_config_pb2.ChannelConfig, message: Message, *, idempotency_key: str = ""
    ) -> str:
        # The group bot API has no idempotency key.
        key = opened(config.wecom_bot.webhook_key.value)
        body = {
            "msgtype": "markdown",
            # A bot's digest (no address) mentions nobody.
            "markdown": {
                "content": f"**{message.title}**\n{message.body}"
                + (f"\n<@{message.address}>" if message.address else "")
            },
        }
        answer = await _post(self.client, f"{self.base_url}?key={urllib.parse.quote(key)}", json=body)
        _bot_errcode(_json(answer))
        return message.delivery_id


class DingTalkBot(_Provider):
    DEFAULT_URL = DINGTALK_URL

    async def send(
        self, config: channel_config_pb2.ChannelConfig, message: Message, *, idempotency_key: str = ""
    ) -> str:
        # The custom robot API has no idempotency key.
        settings = config.dingtalk_bot
        params = {"access_token": opened(settings.access_token.value)}
        secret = opened(settings.signing_secret.value)
        if secret:
            stamp = int(time.time() * 1000)
            params |= {"timestamp": str(stamp), "sign": dingtalk_sign(secret, stamp)}
        title = f"{settings.keyword} {message.title}".strip()
        mention = f"\n@{message.address}" if message.address else ""  # a bot's digest mentions nobody
        phone = message.address.startswith("+")
        body = {
            "msgtype": "markdown",
            "markdown": {"title": title, "text": f"### {title}\n{message.body}{mention}"},
            "at": {
                "atMobiles": [message.address] if phone else [],
                "atUserIds": [message.address] if message.address and not phone else [],
            },
        }
        answer = await _post(self.client, f"{self.base_url}?{urllib.parse.urlencode(params)}", json=body)
        _bot_errcode(_json(answer))
        return message.delivery_id


class SmsGateway(_Provider):
    """Aliyun-style SendSms over HTTPS (JSON answer with Code "OK")."""

    DEFAULT_URL = ALIYUN_SMS_URL

    async def send(
        self, config: channel_config_pb2.ChannelConfig, message: Message, *, idempotency_key: str = ""
    ) -> str:
        sms = config.sms
        params = {
            "Action": "SendSms",
            "PhoneNumbers": message.address,
            "SignName": sms.sign_name,
            "AccessKeyId": sms.access_key_id,
            "TemplateParam": json.dumps({"title": message.title[:20]}, ensure_ascii=False),
            # SendSms's caller-side serial: the delivery, so a resend is traceable to it.
            "OutId": idempotency_key or message.delivery_id,
        }
        data = _json(await _post(self.client, self.base_url, data=params))
        if data.get("Code") != "OK":
            code = token(data.get("Code", ""))
            transient = code in ("isv.BUSINESS_LIMIT_CONTROL", "Throttling")
            raise SendError("PROVIDER_ERROR", "2xx", permanent=not transient, provider_code=code)
        return token(data.get("BizId", ""), message.delivery_id)


# Headers the transport or the signature owns: an admin's header must not redirect the request
# to another virtual host, reframe the body, or forge our own headers.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-connection",
        "content-type",
        "content-encoding",
        "idempotency-key",
        "webhook-id",
    }
)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")


def header_problem(name: str, value: str) -> str:
    """Why a configured webhook header cannot be sent, or ""."""
    lowered = name.lower()
    if not _HEADER_NAME.fullmatch(name):
        return "not a valid header name"
    if lowered in RESERVED_HEADERS or lowered.startswith("x-salesops-"):
        return "set by notify itself"
    if len(value) > 4096 or any((ord(ch) < 0x20 and ch != "\t") or ord(ch) >= 0x7F for ch in value):
        return "the value must be printable ASCII of at most 4096 characters"
    return ""


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class SignedWebhook:
    def __init__(
        self, client: httpx.AsyncClient | None = None, *, policy: OutboundPolicy | None = None
    ) -> None:
        self.client = safe_client(client, policy)

    async def send(
        self, config: channel_config_pb2.ChannelConfig, message: Message, *, idempotency_key: str = ""
    ) -> str:
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
        key = idempotency_key or message.delivery_id
        plain = {name: opened(value) for name, value in hook.headers.items()}
        custom = {name: value for name, value in plain.items() if not header_problem(name, value)}
        headers = custom | {
            "Content-Type": "application/json",
            "X-Salesops-Timestamp": stamp,
            "X-Salesops-Delivery": message.delivery_id,
            # Standard Webhooks' id and the common Idempotency-Key: receivers drop repeats by them.
            "Idempotency-Key": key,
            "webhook-id": key,
        }
        secret = opened(hook.signing_secret.value)
        if secret:
            headers["X-Salesops-Signature"] = webhook_signature(secret, stamp, body)
        timeout = min(hook.timeout.ToTimedelta().total_seconds(), 30.0) if hook.HasField("timeout") else 10.0
        await _post(self.client, hook.url, content=body, headers=headers, timeout=timeout or 10.0)
        return message.delivery_id
