"""gRPC servicer of the integration service, one module per resource: proto <-> use case, checks; no SQL, no rules.

RPCs not overridden answer UNIMPLEMENTED (the generated base class) until the
issue that builds them lands; the contract in protos/ is complete.
"""

from __future__ import annotations

from kit.grpc import diagnostics
from kit.grpc.server import Registration
from kit.runtime import Runtime
from salesops.integration.v1 import integration_service_pb2, integration_service_pb2_grpc
from services.integration.api.connectors import ConnectorsApi
from services.integration.api.insights import InsightsApi
from services.integration.api.links import LinksApi
from services.integration.api.outbound import OutboundWebhooksApi
from services.integration.api.partner_keys import PartnerKeysApi
from services.integration.api.settings import SettingsApi
from services.integration.api.stock import StockApi
from services.integration.api.sync import SyncApi
from services.integration.api.webhooks import WebhooksApi


class IntegrationServiceApi(
    ConnectorsApi,
    InsightsApi,
    LinksApi,
    OutboundWebhooksApi,
    PartnerKeysApi,
    SettingsApi,
    StockApi,
    SyncApi,
    WebhooksApi,
    integration_service_pb2_grpc.IntegrationServiceServicer,
):
    """IntegrationService assembled from its resources' modules."""


# The only methods without a bearer token: a webhook's signature and a partner secret are
# their requests' credentials (kit.grpc.server.Registration.public_methods).
PUBLIC_METHODS = frozenset({"IngestWebhook", "ExchangePartnerKey"})
# Partner scopes naming groups of methods, beside integration.read / .write / .<Method>.
SCOPE_GROUPS = {
    "integration.webhooks": frozenset(
        {
            "CreateWebhookSubscription",
            "GetWebhookSubscription",
            "ListWebhookSubscriptions",
            "UpdateWebhookSubscription",
            "DeleteWebhookSubscription",
            "EnableWebhookSubscription",
            "DisableWebhookSubscription",
            "RotateWebhookSubscriptionSecret",
            "TestWebhookSubscription",
            "ReplayDeadLetters",
            "GetWebhookDelivery",
            "ListWebhookDeliveries",
            "ReplayWebhookDelivery",
        }
    ),
    "integration.stock": frozenset({"CheckStock"}),
    "integration.insights": frozenset({"SubmitConversation", "GetConversation", "ListConversations"}),
}


def registrations(rt: Runtime) -> list[Registration]:
    return [
        Registration(
            integration_service_pb2_grpc.add_IntegrationServiceServicer_to_server,
            # RPCs not built yet are abstract in the stubs and answer UNIMPLEMENTED at run time.
            IntegrationServiceApi(rt),  # type: ignore[abstract]
            integration_service_pb2.DESCRIPTOR.services_by_name["IntegrationService"].full_name,
            public_methods=PUBLIC_METHODS,
            scope_groups=SCOPE_GROUPS,
        ),
        diagnostics.registration("integration"),
    ]
