"""Stock of a new deal's products, asked of integration's CheckStock over gRPC (never imported).

Called after the deal is created, with the caller's own token (the check is
theirs, in their tenant). Anything short of an answer (integration down, no ERP
connector, a timeout) is a DealStockCheck UNKNOWN with the reason: creating a
deal never fails on stock. Integration's address: `SALESOPS_INTEGRATION_ADDR`
(the launcher and the deployment set it; kit.config.service_address).
"""

from __future__ import annotations

import logging

import grpc

from kit.config import env_float, service_address
from kit.grpc import context as call
from kit.grpc.balancing import balanced_channel
from salesops.integration.v1 import integration_service_pb2 as ipb
from salesops.integration.v1 import integration_service_pb2_grpc
from salesops.integration.v1 import stock_pb2 as st
from salesops.pipeline.v1 import deal_pb2
from salesops.pipeline.v1 import stock_check_pb2 as sc

log = logging.getLogger("salesops.pipeline.stock")
REASONS = {
    grpc.StatusCode.UNAVAILABLE: "integration or the ERP is unavailable",
    grpc.StatusCode.DEADLINE_EXCEEDED: "the stock check timed out",
    grpc.StatusCode.FAILED_PRECONDITION: "no usable ERP connector",
    grpc.StatusCode.UNIMPLEMENTED: "stock check is not available",
}


def _unknown(reason: str) -> sc.DealStockCheck:
    return sc.DealStockCheck(state=sc.DEAL_STOCK_STATE_UNKNOWN, reason=reason)


def present(resp: ipb.CheckStockResponse) -> sc.DealStockCheck:
    out = sc.DealStockCheck(
        state=sc.DEAL_STOCK_STATE_AVAILABLE if resp.all_available else sc.DEAL_STOCK_STATE_SHORT,
        from_snapshot=resp.source == st.STOCK_DATA_SOURCE_SNAPSHOT,
    )
    if resp.HasField("as_of_time"):
        out.as_of_time.CopyFrom(resp.as_of_time)
    for line in resp.lines:
        shown = out.lines.add(
            sku=line.sku,
            requested_quantity=line.requested_quantity,
            available_quantity=line.available_quantity,
            unit=line.unit,
            status=st.StockStatus.Name(line.status).removeprefix("STOCK_STATUS_").lower(),
            substitute_skus=[x.sku for x in line.substitutes],
        )
        if line.HasField("restock_date"):
            shown.restock_date.CopyFrom(line.restock_date)
    return out


async def check_deal(deal: deal_pb2.Deal) -> sc.DealStockCheck | None:
    """None when no line item has a SKU; otherwise the check, or UNKNOWN with why."""
    wanted: dict[str, int] = {}
    for item in deal.line_items:
        if item.sku and item.quantity > 0:
            wanted[item.sku] = wanted.get(item.sku, 0) + item.quantity
    if not wanted:
        return None
    request = ipb.CheckStockRequest(
        deal_id=deal.deal_id, lines=[st.StockCheckLine(sku=k, quantity=v) for k, v in wanted.items()]
    )
    metadata = (("authorization", f"Bearer {call.bearer_token()}"),)
    try:
        async with balanced_channel(service_address("integration")) as channel:
            stub = integration_service_pb2_grpc.IntegrationServiceStub(channel)
            resp = await stub.CheckStock(
                request, metadata=metadata, timeout=env_float("SALESOPS_STOCK_CHECK_TIMEOUT", 3.0)
            )
    except grpc.aio.AioRpcError as exc:
        log.info("stock check of deal %s: %s", deal.deal_id, exc.code())
        return _unknown(REASONS.get(exc.code(), f"stock check failed ({exc.code().name.lower()})"))
    except Exception as exc:  # a bad address or the like: still never fail the creation
        log.warning("stock check of deal %s failed: %s", deal.deal_id, exc)
        return _unknown("integration could not be reached")
    return present(resp)
