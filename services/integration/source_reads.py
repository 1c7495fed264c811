"""Reads from a connector's HTTP API for sync and stock checks, through the SSRF-safe transport.

The source answers `GET <base_url>/api/v1/<collection>?updated_since=&after=&limit=`
with `{"data": [records ordered by (updated_at, external_id)], "has_more": bool}`,
and `GET <base_url>/api/v1/stock/availability?skus=` with `{"items": [...], "as_of"}`
(`demo_erp.py` is such a system). A failed call raises SourceError saying a
status class, never the answer text or a secret.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from kit.config import deployment_environment
from kit.net import OutboundError, OutboundPolicy, Outcome, SafeClient, request
from kit.net.policy import ALLOW_VAR
from services.integration import demo_erp
from services.integration.domain.sync import Cursor


class SourceError(Exception):
    """The source could not be read; `message` is safe to show."""

    def __init__(self, message: str, *, code: int = 14) -> None:
        super().__init__(message)
        self.message, self.code = message, code  # google.rpc.Code: 14 UNAVAILABLE, 16 UNAUTHENTICATED...


@dataclass(frozen=True)
class SourcePage:
    records: list[dict[str, Any]]
    has_more: bool


def outbound_policy() -> OutboundPolicy:
    """SALESOPS_OUTBOUND_ALLOW, plus in embedded mode exactly the demo ERP's loopback address."""
    spec = os.environ.get(ALLOW_VAR, "")
    if deployment_environment() == "embedded":
        spec = ",".join(p for p in (spec, f"127.0.0.1:{demo_erp.demo_port()}") if p)
    return OutboundPolicy.parse(spec)


def _headers(secrets: Mapping[str, str]) -> dict[str, str]:
    key = secrets.get("api_key", "")
    return {"Authorization": f"Bearer {key}", "Accept": "application/json"} if key else {}


async def _get_json(client: SafeClient, url: str, secrets: Mapping[str, str]) -> Any:
    try:
        answer = await request(client, "GET", url, headers=_headers(secrets), timeout=20.0)
    except OutboundError as exc:
        what = {Outcome.BLOCKED: "address refused by the outbound policy", Outcome.TIMEOUT: "timed out"}
        raise SourceError(what.get(exc.outcome, "no answer (connection refused or DNS)")) from None
    if answer.status in (401, 403):
        raise SourceError(f"the source refused the credentials (HTTP {answer.status})", code=16)
    if answer.outcome is not Outcome.OK:
        raise SourceError(f"the source answered HTTP {answer.status}")
    try:
        return answer.json()
    except ValueError:
        raise SourceError("the source's answer is not JSON") from None


def base_url(settings: Mapping[str, Any]) -> str:
    base = str(settings.get("base_url", "")).rstrip("/")
    if not base:
        raise SourceError("the connector has no base_url to read from", code=9)
    return base


async def read_page(
    client: SafeClient,
    settings: Mapping[str, Any],
    secrets: Mapping[str, str],
    collection: str,
    cursor: Cursor,
    limit: int,
) -> SourcePage:
    query = {"limit": str(limit)}
    if cursor.updated_at:
        query["updated_since"] = cursor.updated_at
        if cursor.external_id:
            query["after"] = cursor.external_id
    doc = await _get_json(client, f"{base_url(settings)}/api/v1/{collection}?{urlencode(query)}", secrets)
    records = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(records, list) or not isinstance(doc.get("has_more", False), bool):
        raise SourceError("the source's page has no list 'data' and boolean 'has_more'")
    return SourcePage([r for r in records if isinstance(r, dict)], bool(doc.get("has_more")))


async def read_stock(
    client: SafeClient, settings: Mapping[str, Any], secrets: Mapping[str, str], skus: Sequence[str]
) -> tuple[dict[str, dict[str, Any]], datetime | None]:
    """The ERP's items for these SKUs (unknown SKUs absent), and the time it read them."""
    url = f"{base_url(settings)}/api/v1/stock/availability?{urlencode({'skus': ','.join(skus)})}"
    doc = await _get_json(client, url, secrets)
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise SourceError("the ERP's answer has no list 'items'")
    as_of = None
    with contextlib.suppress(ValueError):
        as_of = datetime.fromisoformat(str(doc.get("as_of", "")).replace("Z", "+00:00"))
    return {str(i.get("sku")): i for i in items if isinstance(i, dict) and i.get("sku")}, as_of
