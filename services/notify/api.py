"""gRPC servicer of the notify service: proto <-> domain, validation, error mapping.

RPCs not overridden here answer UNIMPLEMENTED (the generated base class), until
the issue that builds them lands; the contract in protos/ is already complete.
"""

from __future__ import annotations

from kit.grpc import diagnostics
from kit.grpc.server import Registration
from kit.runtime import Runtime
from salesops.notify.v1 import notify_service_pb2, notify_service_pb2_grpc


class NotifyServiceApi(notify_service_pb2_grpc.NotifyServiceServicer):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt


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
