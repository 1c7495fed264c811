"""gRPC servicer of the pipeline service: proto <-> domain, validation, error mapping.

RPCs not overridden here answer UNIMPLEMENTED (the generated base class), until
the issue that builds them lands; the contract in protos/ is already complete.
"""

from __future__ import annotations

from kit.grpc import diagnostics
from kit.grpc.server import Registration
from kit.runtime import Runtime
from salesops.pipeline.v1 import pipeline_service_pb2, pipeline_service_pb2_grpc


class PipelineServiceApi(pipeline_service_pb2_grpc.PipelineServiceServicer):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt


def registrations(rt: Runtime) -> list[Registration]:
    return [
        Registration(
            pipeline_service_pb2_grpc.add_PipelineServiceServicer_to_server,
            # RPCs not built yet are abstract in the stubs and answer UNIMPLEMENTED at run time.
            PipelineServiceApi(rt),  # type: ignore[abstract]
            pipeline_service_pb2.DESCRIPTOR.services_by_name["PipelineService"].full_name,
        ),
        diagnostics.registration("pipeline"),
    ]
