"""Provider adapters behind one interface: a connection test through the SSRF-safe transport.

Every outbound call goes through `kit.net.request` on a `SafeClient`: the host is
resolved once, non-public addresses are refused unless SALESOPS_OUTBOUND_ALLOW
names them (embedded mode, loopback test systems), no redirect is followed.
Checks report a status class and never the answer text or a secret.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from google.protobuf.duration_pb2 import Duration

from kit.net import OutboundError, Outcome, SafeClient, request
from salesops.integration.v1 import connector_pb2 as c
from services.integration.domain import signatures
from services.integration.domain.providers import effective_settings


@dataclass(frozen=True)
class Config:
    """A connector's effective configuration for one call: settings and unsealed secrets."""

    provider: str
    settings: Mapping[str, Any]
    secrets: Mapping[str, str]


class Adapter(Protocol):
    async def test(self, config: Config, client: SafeClient) -> list[c.ConnectionCheck]: ...


def _check(name: str, ok: bool, message: str, started: float) -> c.ConnectionCheck:
    latency = Duration()
    latency.FromNanoseconds(int((time.perf_counter() - started) * 1e9))
    return c.ConnectionCheck(name=name, ok=ok, message=message, latency=latency)


async def _call(
    name: str, client: SafeClient, url: str, headers: Mapping[str, str], expect_errcode: bool
) -> c.ConnectionCheck:
    started = time.perf_counter()
    try:
        answer = await request(client, "GET", url, headers=headers, timeout=10.0)
    except OutboundError as exc:
        what = {Outcome.BLOCKED: "address refused by the outbound policy", Outcome.TIMEOUT: "timed out"}
        return _check(name, False, what.get(exc.outcome, "no answer (connection refused or DNS)"), started)
    if answer.outcome is not Outcome.OK:
        return _check(name, False, f"answered HTTP {answer.status}", started)
    if expect_errcode:  # WeCom / DingTalk answer 200 with {"errcode": 0} on success
        try:
            code = answer.json().get("errcode")
        except (ValueError, AttributeError):
            return _check(name, False, "answer is not the expected JSON", started)
        if code != 0:
            return _check(name, False, f"refused the credentials (errcode {code})", started)
    return _check(name, True, f"answered HTTP {answer.status}", started)


class HttpApiAdapter:
    """Finance, ERP, e-signature and generic systems: GET <base_url><health_path> with the API key."""

    async def test(self, config: Config, client: SafeClient) -> list[c.ConnectionCheck]:
        base = str(config.settings.get("base_url", "")).rstrip("/")
        if not base:
            return [c.ConnectionCheck(name="settings", ok=True, message="inbound only: nothing to call")]
        path = str(config.settings.get("health_path") or "/health")
        headers = (
            {"Authorization": f"Bearer {config.secrets['api_key']}"} if config.secrets.get("api_key") else {}
        )
        return [await _call("auth", client, base + path, headers, expect_errcode=False)]


class TokenAdapter:
    """WeCom and DingTalk: fetching an access token proves the address and the credentials."""

    def __init__(
        self, path: str, id_param: str, id_setting: str, secret_param: str, secret_name: str
    ) -> None:
        self.path, self.id_param, self.id_setting = path, id_param, id_setting
        self.secret_param, self.secret_name = secret_param, secret_name

    async def test(self, config: Config, client: SafeClient) -> list[c.ConnectionCheck]:
        secret = config.secrets.get(self.secret_name, "")
        if not secret:
            return [c.ConnectionCheck(name="auth", ok=False, message=f"secret {self.secret_name} is not set")]
        query = urlencode(
            {self.id_param: str(config.settings.get(self.id_setting, "")), self.secret_param: secret}
        )
        url = str(config.settings["base_url"]).rstrip("/") + self.path + "?" + query
        return [await _call("auth", client, url, {}, expect_errcode=True)]


# WeCom 45009 / DingTalk 130101: the bot is over its 20 messages a minute.
BOT_RATE_LIMITED = frozenset({45009, 130101})


class BotAdapter:
    """WeCom / DingTalk group bots: a real test message through the bot's webhook (errcode 0 = posted)."""

    def __init__(self, dingtalk: bool) -> None:
        self.dingtalk = dingtalk

    def _url(self, config: Config) -> str | None:
        base = str(config.settings["base_url"]).rstrip("/")
        if not self.dingtalk:
            key = config.secrets.get("webhook_key", "")
            return f"{base}/cgi-bin/webhook/send?{urlencode({'key': key})}" if key else None
        token = config.secrets.get("access_token", "")
        if not token:
            return None
        params = {"access_token": token}
        secret = config.secrets.get("signing_secret", "")
        if secret:  # DingTalk's "加签": timestamp (ms) and its signature as query parameters
            stamp = int(time.time() * 1000)
            params |= {"timestamp": str(stamp), "sign": signatures.dingtalk_sign(secret, stamp)}
        return f"{base}/robot/send?{urlencode(params)}"

    async def test(self, config: Config, client: SafeClient) -> list[c.ConnectionCheck]:
        started = time.perf_counter()
        url = self._url(config)
        if url is None:
            secret = "access_token" if self.dingtalk else "webhook_key"
            return [c.ConnectionCheck(name="post", ok=False, message=f"secret {secret} is not set")]
        keyword = str(config.settings.get("keyword", "")) if self.dingtalk else ""
        text = f"{keyword} SalesOps connection test".strip()
        try:
            answer = await request(
                client, "POST", url, json={"msgtype": "text", "text": {"content": text}}, timeout=10.0
            )
        except OutboundError as exc:
            what = {Outcome.BLOCKED: "address refused by the outbound policy", Outcome.TIMEOUT: "timed out"}
            return [
                _check("post", False, what.get(exc.outcome, "no answer (connection refused or DNS)"), started)
            ]
        if answer.outcome is not Outcome.OK:
            return [_check("post", False, f"answered HTTP {answer.status}", started)]
        try:
            code = int(answer.json().get("errcode", -1))
        except (ValueError, AttributeError, TypeError):
            return [_check("post", False, "answer is not the expected JSON", started)]
        if code in BOT_RATE_LIMITED:
            message = f"the bot is over its 20 messages a minute (errcode {code}): try again in a minute"
            return [_check("post", False, message, started)]
        if code != 0:
            return [_check("post", False, f"refused the message (errcode {code})", started)]
        return [_check("post", True, "test message posted", started)]


class MailboxAdapter:
    """Mailboxes: the login test is the e-mail helper's; until then settings are checked only."""

    async def test(self, config: Config, client: SafeClient) -> list[c.ConnectionCheck]:
        ok = bool(config.secrets.get("password"))
        return [
            c.ConnectionCheck(
                name="settings", ok=ok, message="settings complete" if ok else "password not set"
            )
        ]


ADAPTERS: dict[str, Adapter] = {
    "finance_http": HttpApiAdapter(),
    "erp_http": HttpApiAdapter(),
    "esign_http": HttpApiAdapter(),
    "generic_http": HttpApiAdapter(),
    "wecom": TokenAdapter("/cgi-bin/gettoken", "corpid", "corp_id", "corpsecret", "corp_secret"),
    "dingtalk": TokenAdapter("/gettoken", "appkey", "app_key", "appsecret", "app_secret"),
    "wecom_bot": BotAdapter(dingtalk=False),
    "dingtalk_bot": BotAdapter(dingtalk=True),
    "smtp_imap": MailboxAdapter(),
}


async def run_test(
    provider: str, settings: Mapping[str, Any], secrets: Mapping[str, str], client: SafeClient
) -> list[c.ConnectionCheck]:
    config = Config(provider, effective_settings(provider, settings), secrets)
    return await ADAPTERS[provider].test(config, client)
