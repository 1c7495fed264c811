"""Backends calls without grpc.aio interceptors yet keeps the kit's retry rules: a create that
carries its client-made key is retried on UNAVAILABLE; one without the key, and any other code,
is an answer at once (a second create could apply twice)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from deploy.local.infra import free_port
from gateway.backends import Backends
from gateway.routes import Router, load_routes
from salesops.leads.v1 import lead_pb2, leads_service_pb2, leads_service_pb2_grpc


class Flaky(leads_service_pb2_grpc.LeadsServiceServicer):
    """CreateLead answers UNAVAILABLE `failures` times, then creates."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def CreateLead(self, request: Any, context: Any) -> leads_service_pb2.CreateLeadResponse:
        self.calls += 1
        if self.calls <= self.failures:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "replica going away")
        return leads_service_pb2.CreateLeadResponse(lead=request.lead)


async def _backends(servicer: Flaky) -> AsyncIterator[Backends]:
    server = grpc.aio.server()
    leads_service_pb2_grpc.add_LeadsServiceServicer_to_server(servicer, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    backends = Backends({"leads": f"127.0.0.1:{port}"}, 1)
    backends.open()
    try:
        yield backends
    finally:
        await backends.close()
        await server.stop(None)


def _create_route() -> Any:
    return next(r for r in Router(load_routes()).routes if r.grpc_path.endswith("LeadsService/CreateLead"))


async def test_keyed_create_is_retried_on_unavailable() -> None:
    servicer = Flaky(failures=1)  # type: ignore[abstract]  # implements CreateLead only
    async for backends in _backends(servicer):
        request = leads_service_pb2.CreateLeadRequest(lead=lead_pb2.Lead(lead_id="lead-key-1"))
        reply = await backends.unary(_create_route(), request, [], 5.0)
    assert reply.lead.lead_id == "lead-key-1"
    assert servicer.calls == 2


async def test_create_without_key_is_not_retried() -> None:
    servicer = Flaky(failures=1)  # type: ignore[abstract]  # implements CreateLead only
    async for backends in _backends(servicer):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await backends.unary(_create_route(), leads_service_pb2.CreateLeadRequest(), [], 5.0)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert servicer.calls == 1
