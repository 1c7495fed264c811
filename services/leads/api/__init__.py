"""gRPC servicer of the leads service, one module per resource: proto <-> use case, checks; no SQL, no rules.

RPCs not overridden answer UNIMPLEMENTED (the generated base class).
"""

from __future__ import annotations

from kit.grpc import diagnostics
from kit.grpc.server import Registration
from kit.runtime import Runtime
from salesops.leads.v1 import leads_service_pb2, leads_service_pb2_grpc
from services.leads.api.assignment import AssignmentApi
from services.leads.api.followups import FollowUpsApi
from services.leads.api.insights import InsightsApi
from services.leads.api.intake import IntakeApi
from services.leads.api.leads import LeadsApi
from services.leads.api.reps import RepProfilesApi
from services.leads.api.settings import SettingsApi


class LeadsServiceApi(
    IntakeApi,
    LeadsApi,
    AssignmentApi,
    FollowUpsApi,
    InsightsApi,
    RepProfilesApi,
    SettingsApi,
    leads_service_pb2_grpc.LeadsServiceServicer,
):
    """LeadsService assembled from its resources' modules."""


def registrations(rt: Runtime) -> list[Registration]:
    return [
        Registration(
            leads_service_pb2_grpc.add_LeadsServiceServicer_to_server,
            LeadsServiceApi(rt),
            leads_service_pb2.DESCRIPTOR.services_by_name["LeadsService"].full_name,
        ),
        diagnostics.registration("leads"),
    ]
