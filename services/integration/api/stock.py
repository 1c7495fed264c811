"""CheckStock: any signed-in user of the tenant (reps check stock for their deals; pipeline forwards theirs)."""

from __future__ import annotations

from kit.grpc import context as call
from kit.net import SafeClient
from salesops.integration.v1 import integration_service_pb2 as pb
from services.integration import stock
from services.integration.api.base import ApiBase, Ctx
from services.integration.source_reads import outbound_policy


class StockApi(ApiBase):
    _stock_client: SafeClient | None = None

    @property
    def stock_client(self) -> SafeClient:
        # Its own client: the policy adds the embedded demo ERP's loopback address (source_reads).
        if self._stock_client is None:
            self._stock_client = SafeClient(outbound_policy())
        return self._stock_client

    async def CheckStock(self, request: pb.CheckStockRequest, context: Ctx) -> pb.CheckStockResponse:
        who = call.principal()
        return await stock.check(self.tx, self.stock_client, who.tenant, request)
