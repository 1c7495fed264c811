"""gRPC servicer of the leads service: proto <-> domain, validation, error mapping.

RPCs not overridden here answer UNIMPLEMENTED (the generated base class), until
the issue that builds them lands; the contract in protos/ is already complete.
"""

from __future__ import annotations

from kit.grpc import diagnostics
from kit.grpc.server import Registration
from kit.runtime import Runtime
from salesops.leads.v1 import leads_service_pb2, leads_service_pb2_grpc


class LeadsServiceApi(leads_service_pb2_grpc.LeadsServiceServicer):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt


def registrations(rt: Runtime) -> list[Registration]:
    return [
        Registration(
            leads_service_pb2_grpc.add_LeadsServiceServicer_to_server,
            # RPCs not built yet are abstract in the stubs and answer UNIMPLEMENTED at run time.
            LeadsServiceApi(rt),  # type: ignore[abstract]
            leads_service_pb2.DESCRIPTOR.services_by_name["LeadsService"].full_name,
        ),
        diagnostics.registration("leads"),
    ]
