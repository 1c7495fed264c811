"""A deal created with products shows their stock from integration's CheckStock (over gRPC,
integration on its own database, a loopback ERP behind it); creation never fails on stock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest

from deploy.local.infra import free_port
from kit.auth import TokenVerifier
from kit.db import Database
from kit.grpc.server import GrpcServer
from kit.migrations import upgrade_to_head
from salesops.common.v1.types_pb2 import Money
from salesops.integration.v1 import integration_service_pb2 as ipb
from salesops.integration.v1 import integration_service_pb2_grpc
from salesops.pipeline.v1 import deal_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import stock_check_pb2 as sc
from services.integration import api as integration_api
from services.integration import demo_erp
from tests.integration.conftest import CONFIG, Integration, grpc_settings
from tests.integration.test_stock import erp_connector
from tests.pipeline.conftest import Pipeline
from tests.pipeline.helpers import new_deal


@pytest.fixture
async def integration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Integration]:
    """Integration on its own SQLite file, with an enabled ERP connector; pipeline finds it by env."""
    monkeypatch.setenv("SALESOPS_OUTBOUND_ALLOW", "127.0.0.1")
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'integration.db'}")
    await upgrade_to_head("integration", db)
    server = GrpcServer(
        "integration",
        grpc_settings(),
        TokenVerifier(CONFIG),
        integration_api.registrations(SimpleNamespace(db=db)),  # type: ignore[arg-type]
    )
    await server.start()
    channel = grpc.aio.insecure_channel(server.address)
    found = Integration(db, integration_service_pb2_grpc.IntegrationServiceStub(channel), server.address)
    try:
        async with demo_erp.serve(demo_erp.demo_data(), free_port()) as url:
            await found.call("CreateConnector", ipb.CreateConnectorRequest(connector=erp_connector(url)))
            await found.call("EnableConnector", ipb.EnableConnectorRequest(connector_id="erp-1"))
            monkeypatch.setenv("SALESOPS_INTEGRATION_ADDR", server.address)
            yield found
    finally:
        await channel.close(None)
        await server.stop(0)
        await db.dispose()


def with_products(deal_id: str, *lines: tuple[str, int]) -> deal_pb2.Deal:
    deal = new_deal(deal_id)
    for i, (sku, qty) in enumerate(lines):
        deal.line_items.add(
            line_id=f"l{i}",
            sku=sku,
            product_name=sku,
            quantity=qty,
            unit_price=Money(amount_minor=10_000, currency="CNY"),
        )
    return deal


async def create(pipeline: Pipeline, deal: deal_pb2.Deal) -> pb.CreateDealResponse:
    resp: pb.CreateDealResponse = await pipeline.call(
        "CreateDeal", pb.CreateDealRequest(deal=deal), user="rep-a1"
    )
    return resp


async def test_a_new_deal_shows_the_stock_of_its_products(
    pipeline: Pipeline, integration: Integration
) -> None:
    resp = await create(
        pipeline, with_products("D-stock-1", ("PMP-200-A", 10), ("PMP-300-B", 20), ("VLV-50", 1))
    )
    check = resp.stock_check
    assert check.state == sc.DEAL_STOCK_STATE_SHORT and not check.from_snapshot
    by = {line.sku: line for line in check.lines}
    assert by["PMP-200-A"].status == "available"
    assert by["PMP-300-B"].status == "partial" and by["PMP-300-B"].available_quantity == 8
    assert by["PMP-300-B"].HasField("restock_date") and list(by["PMP-300-B"].substitute_skus) == ["PMP-200-A"]
    assert by["VLV-50"].status == "discontinued" and list(by["VLV-50"].substitute_skus) == ["VLV-50S"]

    enough = await create(pipeline, with_products("D-stock-2", ("PMP-200-A", 5), ("PMP-200-A", 5)))
    assert enough.stock_check.state == sc.DEAL_STOCK_STATE_AVAILABLE
    assert [(x.sku, x.requested_quantity) for x in enough.stock_check.lines] == [("PMP-200-A", 10)]
    plain = await create(pipeline, new_deal("D-stock-3"))  # no products: nothing to check
    assert not plain.HasField("stock_check")


async def test_deal_creation_does_not_fail_when_integration_is_down(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALESOPS_INTEGRATION_ADDR", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("SALESOPS_STOCK_CHECK_TIMEOUT", "2")
    resp = await create(pipeline, with_products("D-stock-4", ("PMP-200-A", 1)))
    assert resp.deal.deal_id == "D-stock-4"
    assert resp.stock_check.state == sc.DEAL_STOCK_STATE_UNKNOWN
    assert resp.stock_check.reason in ("integration or the ERP is unavailable", "the stock check timed out")
    got = await pipeline.call("GetDeal", pb.GetDealRequest(deal_id="D-stock-4"), user="rep-a1")
    assert got.deal.deal_id == "D-stock-4"
