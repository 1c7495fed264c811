"""gRPC servicer of the pipeline service, one module per resource: proto <-> use case, checks; no SQL, no rules.

RPCs not overridden answer UNIMPLEMENTED (the generated base class) until the
issue that builds them lands; the contract in protos/ is complete.
"""

from __future__ import annotations

from kit.grpc import diagnostics
from kit.grpc.server import Registration
from kit.runtime import Runtime
from salesops.pipeline.v1 import pipeline_service_pb2, pipeline_service_pb2_grpc
from services.pipeline.api.accuracy import AccuracyApi
from services.pipeline.api.approvals import ApprovalsApi
from services.pipeline.api.calls import CallsApi
from services.pipeline.api.closing import ClosingApi
from services.pipeline.api.customers import CustomersApi
from services.pipeline.api.deals import DealsApi
from services.pipeline.api.evidence import EvidenceApi
from services.pipeline.api.finance import FinanceApi
from services.pipeline.api.forecast import ForecastApi
from services.pipeline.api.health import HealthApi
from services.pipeline.api.members import MembersApi
from services.pipeline.api.settings import SettingsApi
from services.pipeline.api.snapshots import SnapshotsApi
from services.pipeline.api.stage_model import StageModelApi
from services.pipeline.api.targets import TargetsApi
from services.pipeline.api.won import WonApi


class PipelineServiceApi(
    DealsApi,
    AccuracyApi,
    ApprovalsApi,
    CallsApi,
    ClosingApi,
    CustomersApi,
    EvidenceApi,
    FinanceApi,
    ForecastApi,
    HealthApi,
    MembersApi,
    SettingsApi,
    SnapshotsApi,
    StageModelApi,
    TargetsApi,
    WonApi,
    pipeline_service_pb2_grpc.PipelineServiceServicer,
):
    """PipelineService assembled from its resources' modules."""


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
