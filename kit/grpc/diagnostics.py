"""DiagnosticsService, served by every service: the cheapest authenticated call."""

from __future__ import annotations

from typing import Any

import grpc

from kit.grpc import context as call
from kit.grpc.server import Registration
from salesops.common.v1 import diagnostics_pb2, diagnostics_pb2_grpc


class Diagnostics(diagnostics_pb2_grpc.DiagnosticsServiceServicer):
    def __init__(self, service: str) -> None:
        self.service = service

    async def WhoAmI(
        self, request: diagnostics_pb2.WhoAmIRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> diagnostics_pb2.WhoAmIResponse:
        who = call.principal()
        return diagnostics_pb2.WhoAmIResponse(
            user_id=who.user_id, tenant=who.tenant, roles=sorted(who.roles), org=who.org, service=self.service
        )


def registration(service: str) -> Registration:
    return Registration(
        diagnostics_pb2_grpc.add_DiagnosticsServiceServicer_to_server,
        Diagnostics(service),
        diagnostics_pb2.DESCRIPTOR.services_by_name["DiagnosticsService"].full_name,
    )
