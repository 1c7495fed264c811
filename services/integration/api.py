"""gRPC servicer of the integration service: proto <-> domain, validation, error mapping.

RPCs not overridden here answer UNIMPLEMENTED (the generated base class), until
the issue that builds them lands; the contract in protos/ is already complete.
"""

from __future__ import annotations

from kit.grpc import diagnostics
from kit.grpc.server import Registration
from kit.runtime import Runtime
from salesops.integration.v1 import integration_service_pb2, integration_service_pb2_grpc


class IntegrationServiceApi(integration_service_pb2_grpc.IntegrationServiceServicer):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt


def registrations(rt: Runtime) -> list[Registration]:
    return [
        Registration(
            integration_service_pb2_grpc.add_IntegrationServiceServicer_to_server,
            # RPCs not built yet are abstract in the stubs and answer UNIMPLEMENTED at run time.
            IntegrationServiceApi(rt),  # type: ignore[abstract]
            integration_service_pb2.DESCRIPTOR.services_by_name["IntegrationService"].full_name,
        ),
        diagnostics.registration("integration"),
    ]
