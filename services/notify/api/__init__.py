"""gRPC servicer of the notify service, one module per resource: proto <-> use case, validation.

RPCs not overridden here answer UNIMPLEMENTED (the generated base class).
"""

from __future__ import annotations

from kit.grpc import diagnostics
from kit.grpc.server import Registration
from kit.runtime import Runtime
from salesops.notify.v1 import notify_service_pb2, notify_service_pb2_grpc
from services.notify.api.channel_configs import ChannelConfigsApi
from services.notify.api.deliveries import DeliveriesApi
from services.notify.api.devices import DevicesApi
from services.notify.api.escalation_policies import EscalationPoliciesApi
from services.notify.api.inbox import InboxApi
from services.notify.api.notifications import NotificationsApi
from services.notify.api.preferences import PreferencesApi
from services.notify.api.settings import SettingsApi
from services.notify.api.subscribers import SubscribersApi
from services.notify.api.templates import TemplatesApi


class NotifyServiceApi(
    NotificationsApi,
    DeliveriesApi,
    InboxApi,
    PreferencesApi,
    DevicesApi,
    TemplatesApi,
    ChannelConfigsApi,
    EscalationPoliciesApi,
    SettingsApi,
    SubscribersApi,
    notify_service_pb2_grpc.NotifyServiceServicer,
):
    """The NotifyService servicer assembled from the per-resource mixins."""


def registrations(rt: Runtime) -> list[Registration]:
    return [
        Registration(
            notify_service_pb2_grpc.add_NotifyServiceServicer_to_server,
            # RPCs not built yet are abstract in the stubs and answer UNIMPLEMENTED at run time.
            NotifyServiceApi(rt),  # type: ignore[abstract]
            notify_service_pb2.DESCRIPTOR.services_by_name["NotifyService"].full_name,
        ),
        diagnostics.registration("notify"),
    ]
