"""gRPC servicer of the knowledge service, one module per resource: proto <-> use case, checks; no SQL, no rules.

RPCs not overridden answer UNIMPLEMENTED (the generated base class) until the
issue that builds them lands; the contract in protos/ is complete.
"""

from __future__ import annotations

from kit.grpc import diagnostics
from kit.grpc.server import Registration
from kit.runtime import Runtime
from salesops.knowledge.v1 import knowledge_service_pb2, knowledge_service_pb2_grpc
from services.knowledge.api.cards import CardsApi
from services.knowledge.api.contributions import ContributionsApi
from services.knowledge.api.iteration import IterationApi
from services.knowledge.api.recommend import RecommendApi
from services.knowledge.api.search import SearchApi
from services.knowledge.api.settings import SettingsApi
from services.knowledge.api.uses import UsesApi


class KnowledgeServiceApi(
    CardsApi,
    ContributionsApi,
    IterationApi,
    RecommendApi,
    SearchApi,
    SettingsApi,
    UsesApi,
    knowledge_service_pb2_grpc.KnowledgeServiceServicer,
):
    """KnowledgeService assembled from its resources' modules."""


def registrations(rt: Runtime) -> list[Registration]:
    return [
        Registration(
            knowledge_service_pb2_grpc.add_KnowledgeServiceServicer_to_server,
            # RPCs not built yet are abstract in the stubs and answer UNIMPLEMENTED at run time.
            KnowledgeServiceApi(rt),  # type: ignore[abstract]
            knowledge_service_pb2.DESCRIPTOR.services_by_name["KnowledgeService"].full_name,
        ),
        diagnostics.registration("knowledge"),
    ]
