"""Demo data of the integration service (`make run`), through its own gRPC API, idempotently.

One loopback "demo finance / ERP" connector, enabled, receiving Standard Webhooks
at /hooks/v1/demo/demo-finance. Its signing secret is published here on purpose
(demo only) so a payment can be posted by hand; see services/integration/README.md.
"""

from __future__ import annotations

import grpc
from google.protobuf.struct_pb2 import Struct

from kit.seeding import SeedClients
from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import integration_service_pb2_grpc
from services.integration import seed_insights, seed_outbound, sync_seed

DEMO_CONNECTOR_ID = "demo-finance"
# Published demo secret: "whsec_" + base64 of a demo phrase. Never a production value.
DEMO_SIGNING_SECRET = "whsec_ZGVtby1maW5hbmNlLXNpZ25pbmcta2V5IQ=="
MAPPINGS = {
    "payment.succeeded": c.MAPPED_EVENT_TYPE_PAYMENT_RECEIVED,
    "invoice.issued": c.MAPPED_EVENT_TYPE_INVOICE_ISSUED,
    "contract.signed": c.MAPPED_EVENT_TYPE_CONTRACT_SIGNED,
    "shipment.dispatched": c.MAPPED_EVENT_TYPE_SHIPMENT_DISPATCHED,
}


def demo_connector() -> c.Connector:
    settings = Struct()
    settings.update({"base_url": "http://127.0.0.1:8080", "health_path": "/healthz"})
    return c.Connector(
        connector_id=DEMO_CONNECTOR_ID,
        display_name="Demo finance / ERP (loopback)",
        kind=c.CONNECTOR_KIND_FINANCE,
        provider="finance_http",
        settings=settings,
        secrets={"api_key": "demo-api-key"},
        owner_user_id="admin",
        inbound=c.InboundWebhookConfig(
            enabled=True,
            signature_scheme=c.SIGNATURE_SCHEME_STANDARD_WEBHOOKS,
            signing_secret=DEMO_SIGNING_SECRET,
            mappings=[
                c.InboundEventMapping(external_event_type=k, mapped_event_type=v) for k, v in MAPPINGS.items()
            ],
        ),
    )


async def demo_seed(clients: SeedClients) -> None:
    md = clients.metadata("admin")
    async with clients.channel("integration") as channel:
        stub = integration_service_pb2_grpc.IntegrationServiceStub(channel)
        try:
            await stub.CreateConnector(
                pb.CreateConnectorRequest(connector=demo_connector()), metadata=md, timeout=30
            )
        except grpc.aio.AioRpcError as exc:  # seeded before with other content: leave it as the admin left it
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
        await stub.EnableConnector(
            pb.EnableConnectorRequest(connector_id=DEMO_CONNECTOR_ID), metadata=md, timeout=30
        )
        # The demo ERP connector and its stock sync job (sync_seed.py).
        await sync_seed.seed_sync(stub, md)  # type: ignore[arg-type]
        # One outbound subscription posting to the demo connector's own receiver (seed_outbound.py).
        await seed_outbound.seed_outbound(stub, md, DEMO_SIGNING_SECRET)
        # The default keyword dictionary of conversation insights (seed_insights.py).
        await seed_insights.seed_insights(stub, md)
