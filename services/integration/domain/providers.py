"""Connector providers: what each accepts as typed settings and secrets, for which kinds. Pure.

A provider's settings are a flat JSON object; each key has a type and may be
required. Unknown keys are refused (a typo would otherwise be silently ignored).
Secrets are names only here: their values never reach the domain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from salesops.integration.v1 import connector_pb2 as c

FINANCE, ERP, MESSAGING = c.CONNECTOR_KIND_FINANCE, c.CONNECTOR_KIND_ERP, c.CONNECTOR_KIND_MESSAGING
EMAIL, E_SIGNATURE = c.CONNECTOR_KIND_EMAIL, c.CONNECTOR_KIND_E_SIGNATURE


@dataclass(frozen=True)
class Setting:
    type: type
    required: bool = False
    url: bool = False  # an http(s) URL, checked again by the SSRF-safe transport at every call


@dataclass(frozen=True)
class Provider:
    name: str
    kinds: frozenset[int]
    settings: Mapping[str, Setting]
    secrets: frozenset[str] = frozenset()
    # Has its own inbound signature scheme (SIGNATURE_SCHEME_PROVIDER_NATIVE).
    native_inbound: bool = False
    defaults: Mapping[str, Any] = field(default_factory=dict)


_HTTP = {"base_url": Setting(str, required=True, url=True), "health_path": Setting(str)}

PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        # Finance and ERP systems that speak JSON over HTTPS with an API key (our canonical payloads).
        Provider("finance_http", frozenset({FINANCE}), _HTTP, frozenset({"api_key"})),
        Provider("erp_http", frozenset({ERP}), _HTTP, frozenset({"api_key"})),
        Provider(
            "wecom",
            frozenset({MESSAGING}),
            {
                "base_url": Setting(str, url=True),
                "corp_id": Setting(str, required=True),
                "agent_id": Setting(int),
            },
            frozenset({"corp_secret"}),
            defaults={"base_url": "https://qyapi.weixin.qq.com"},
        ),
        Provider(
            "dingtalk",
            frozenset({MESSAGING}),
            {"base_url": Setting(str, url=True), "app_key": Setting(str, required=True)},
            frozenset({"app_secret"}),
            native_inbound=True,
            defaults={"base_url": "https://oapi.dingtalk.com"},
        ),
        # Group bots (the webhook robots alerts go to): TestConnector posts a real test message.
        Provider(
            "wecom_bot",
            frozenset({MESSAGING}),
            {"base_url": Setting(str, url=True)},
            frozenset({"webhook_key"}),
            defaults={"base_url": "https://qyapi.weixin.qq.com"},
        ),
        Provider(
            "dingtalk_bot",
            frozenset({MESSAGING}),
            {"base_url": Setting(str, url=True), "keyword": Setting(str)},
            frozenset({"access_token", "signing_secret"}),
            defaults={"base_url": "https://oapi.dingtalk.com"},
        ),
        Provider(
            "smtp_imap",
            frozenset({EMAIL}),
            {
                "smtp_host": Setting(str, required=True),
                "smtp_port": Setting(int),
                "imap_host": Setting(str),
                "username": Setting(str, required=True),
            },
            frozenset({"password"}),
        ),
        Provider("esign_http", frozenset({E_SIGNATURE}), _HTTP, frozenset({"api_key"})),
        # Anything that posts our signed format; base_url optional (inbound only).
        Provider(
            "generic_http",
            frozenset({FINANCE, ERP, MESSAGING, EMAIL, E_SIGNATURE}),
            {"base_url": Setting(str, url=True), "health_path": Setting(str)},
            frozenset({"api_key"}),
        ),
    )
}


def check_settings(
    provider_name: str, kind: int, settings: Mapping[str, Any], secrets: set[str]
) -> list[tuple[str, str]]:
    """Every problem as (field path, description); empty when the connector is well-formed."""
    provider = PROVIDERS.get(provider_name)
    if provider is None:
        return [("provider", f"unknown provider; one of {', '.join(sorted(PROVIDERS))}")]
    problems: list[tuple[str, str]] = []
    if kind not in provider.kinds:
        problems.append(("kind", f"provider {provider_name} does not serve this kind"))
    for name, value in settings.items():
        spec = provider.settings.get(name)
        if spec is None:
            problems.append((f"settings.{name}", "unknown setting"))
            continue
        if spec.type is int:
            # JSON numbers arrive as floats through Struct.
            if not isinstance(value, int | float) or isinstance(value, bool) or value != int(value):
                problems.append((f"settings.{name}", "must be an integer"))
        elif not isinstance(value, spec.type) or not str(value).strip():
            problems.append((f"settings.{name}", f"must be a non-empty {spec.type.__name__}"))
        elif spec.url and urlsplit(str(value)).scheme not in ("http", "https"):
            problems.append((f"settings.{name}", "must be an http(s) URL"))
    for name, spec in provider.settings.items():
        if spec.required and name not in settings and name not in provider.defaults:
            problems.append((f"settings.{name}", "required"))
    for name in sorted(secrets - provider.secrets):
        problems.append(
            (
                f"secrets.{name}",
                f"unknown secret; {provider_name} takes {', '.join(sorted(provider.secrets))}",
            )
        )
    return problems


def effective_settings(provider_name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    provider = PROVIDERS[provider_name]
    return {**provider.defaults, **settings}
