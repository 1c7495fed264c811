"""A loopback demo ERP / finance system: what `make run` syncs from and checks stock against.

It answers like the systems `erp_http` / `finance_http` connectors talk to (bearer
API key; records paged by change time, `updated_since` + `after` as the cursor,
`has_more` until the end; stock availability per SKU with warehouses, incoming
purchases and the substitution table). Tests use the same server as their fake
ERP: `ErpData` holds its records, and a test can add records or make the next
calls fail. In embedded mode the integration service serves it on
127.0.0.1:`SALESOPS_DEMO_ERP_PORT` (default 8097) and allows exactly that
address in its outbound policy; production never starts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger("salesops.integration.demo_erp")

PORT_VAR = "SALESOPS_DEMO_ERP_PORT"
DEFAULT_PORT = 8097
DEMO_API_KEY = "demo-erp-api-key"
KINDS = ("payments", "invoices", "contracts", "shipments", "stock")


def demo_port() -> int:
    return int(os.environ.get(PORT_VAR, "") or DEFAULT_PORT)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class ErpData:
    """The ERP's state: records per kind, stock items per SKU, and injected failures."""

    api_key: str = DEMO_API_KEY
    records: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {k: [] for k in KINDS})
    stock: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_next: int = 0  # the next N data calls answer 503
    fail_status: int = 503
    calls: list[str] = field(default_factory=list)

    def add(self, kind: str, external_id: str, updated_at: datetime, **data: Any) -> dict[str, Any]:
        record = {"external_id": external_id, "updated_at": iso(updated_at), **data}
        kept = [r for r in self.records[kind] if r["external_id"] != external_id]
        self.records[kind] = [*kept, record]
        return record

    def add_item(self, sku: str, name: str, updated_at: datetime, **item: Any) -> dict[str, Any]:
        doc = {
            "sku": sku,
            "name": name,
            "unit": "pcs",
            "status": "active",
            "warehouses": [],
            "incoming": [],
            "substitutes": [],
            **item,
        }
        self.stock[sku] = doc
        self.add("stock", sku, updated_at, **doc)
        return doc

    def page(self, kind: str, since: str, after: str, limit: int) -> tuple[list[dict[str, Any]], bool]:
        ordered = sorted(self.records[kind], key=lambda r: (_parse(r["updated_at"]), r["external_id"]))
        if since:
            mark = (_parse(since), after)
            ordered = [r for r in ordered if (_parse(r["updated_at"]), r["external_id"]) > mark]
        return ordered[:limit], len(ordered) > limit


def demo_data(now: datetime | None = None) -> ErpData:
    """What the demo ERP holds on first start: a few products, payments, shipments and contracts."""
    at = now or datetime.now(UTC)
    d = ErpData()
    sh, bj = ("SH01", "上海一号仓"), ("BJ02", "北京二号仓")
    d.add_item(
        "PMP-200-A",
        "离心泵 200 型",
        at - timedelta(hours=3),
        warehouses=[
            {"code": sh[0], "name": sh[1], "available": 40},
            {"code": bj[0], "name": bj[1], "available": 12},
        ],
        list_price_minor=1_280_000,
        currency="CNY",
    )
    d.add_item(
        "PMP-300-B",
        "离心泵 300 型 升级款",
        at - timedelta(hours=3),
        warehouses=[{"code": sh[0], "name": sh[1], "available": 8}],
        incoming=[{"date": (at + timedelta(days=12)).date().isoformat(), "quantity": 30}],
        substitutes=[
            {
                "sku": "PMP-200-A",
                "reason": "same_family",
                "note": "同系列 流量略低",
                "price_delta_minor": -300_000,
            }
        ],
        list_price_minor=1_580_000,
        currency="CNY",
    )
    d.add_item(
        "VLV-50",
        "电动阀 DN50 停产",
        at - timedelta(days=2),
        status="discontinued",
        substitutes=[
            {"sku": "VLV-50S", "reason": "successor", "note": "升级款 接口兼容", "price_delta_minor": 20_000}
        ],
        currency="CNY",
    )
    d.add_item(
        "VLV-50S",
        "电动阀 DN50 S 型",
        at - timedelta(days=1),
        warehouses=[{"code": bj[0], "name": bj[1], "available": 120}],
        list_price_minor=420_000,
        currency="CNY",
    )
    for i in range(1, 6):
        d.add(
            "shipments",
            f"SHP-{i:04d}",
            at - timedelta(hours=30 - i * 5),
            number=f"DN-2026-{i:04d}",
            occurred_at=iso(at - timedelta(hours=30 - i * 5)),
            lines=[{"sku": "PMP-200-A", "quantity": i, "unit": "pcs"}],
            carrier="顺丰",
        )
        d.add(
            "payments",
            f"PAY-{i:04d}",
            at - timedelta(hours=28 - i * 5),
            amount_minor=100_000 * i,
            currency="CNY",
            method="bank_transfer",
            occurred_at=iso(at - timedelta(hours=28 - i * 5)),
        )
    return d


def app(data: ErpData) -> Starlette:
    def authorised(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {data.api_key}"

    async def health(request: Request) -> Response:
        if not authorised(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return JSONResponse({"ok": True})

    async def records(request: Request) -> Response:
        kind = request.path_params["kind"]
        data.calls.append(f"{kind}?{request.url.query}")
        if not authorised(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        if data.fail_next > 0:
            data.fail_next -= 1
            return JSONResponse({"error": "temporarily unavailable"}, status_code=data.fail_status)
        if kind not in KINDS:
            return JSONResponse({"error": "unknown collection"}, status_code=404)
        q = request.query_params
        try:
            limit = max(1, min(int(q.get("limit", "100")), 500))
            page, more = data.page(kind, q.get("updated_since", ""), q.get("after", ""), limit)
        except ValueError:
            return JSONResponse({"error": "bad updated_since or limit"}, status_code=400)
        return JSONResponse({"data": page, "has_more": more})

    async def availability(request: Request) -> Response:
        data.calls.append(f"availability?{request.url.query}")
        if not authorised(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        if data.fail_next > 0:
            data.fail_next -= 1
            return JSONResponse({"error": "temporarily unavailable"}, status_code=data.fail_status)
        skus = [s for s in request.query_params.get("skus", "").split(",") if s]
        items = [data.stock[s] for s in skus if s in data.stock]
        return JSONResponse({"items": items, "as_of": iso(datetime.now(UTC))})

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/api/v1/stock/availability", availability),
            Route("/api/v1/{kind}", records),
        ]
    )


@contextlib.asynccontextmanager
async def serve(data: ErpData, port: int) -> AsyncIterator[str]:
    """Serve `data` on 127.0.0.1:`port` for the duration of the block; yields the base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app(data), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve(), name="demo-erp")
    for _ in range(800):
        if server.started or task.done():
            break
        await asyncio.sleep(0.025)
    if task.done():
        raise OSError(f"the demo ERP could not listen on 127.0.0.1:{port}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task


class DemoErp:
    """The runtime's Background: the demo ERP, embedded mode only; a port in use is logged, not fatal."""

    def __init__(self) -> None:
        self._stop = asyncio.Event()

    async def run(self) -> None:
        try:
            async with serve(demo_data(), demo_port()):
                log.info("demo ERP listening on 127.0.0.1:%s", demo_port())
                await self._stop.wait()
        except (OSError, SystemExit) as exc:  # uvicorn exits when the port is taken
            log.warning("demo ERP not started: %s", exc)

    async def stop(self) -> None:
        self._stop.set()
