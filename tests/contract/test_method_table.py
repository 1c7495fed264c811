"""kit.grpc.server.MethodTable: every method, wrapped once, served through one generic handler."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from deploy.local.infra import free_port
from kit.auth import AuthConfig, TokenMinter, TokenVerifier
from kit.config import GrpcSettings
from kit.grpc import diagnostics
from kit.grpc.metrics import MethodMetrics
from kit.grpc.server import GrpcServer, Registration
from kit.metrics import RPC_STARTED
from salesops.common.v1 import diagnostics_pb2, diagnostics_pb2_grpc

CONFIG = AuthConfig.from_env({})
WHOAMI = "/salesops.common.v1.DiagnosticsService/WhoAmI"


def _generic_only(servicer: Any, server: Any) -> None:
    """What generated code of a grpcio without registered methods does: one generic handler."""
    handler = grpc.method_handlers_generic_handler(
        "salesops.common.v1.DiagnosticsService",
        {
            "WhoAmI": grpc.unary_unary_rpc_method_handler(
                servicer.WhoAmI,
                request_deserializer=diagnostics_pb2.WhoAmIRequest.FromString,
                response_serializer=diagnostics_pb2.WhoAmIResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))


def _server(add: Any) -> GrpcServer:
    settings = GrpcSettings(f"127.0.0.1:{free_port()}", True, 1.0, 5.0, 4 << 20, 30_000, 10_000)
    reg = Registration(add, diagnostics.Diagnostics("leads"), "salesops.common.v1.DiagnosticsService")
    return GrpcServer("leads", settings, TokenVerifier(CONFIG), [reg])


async def test_the_table_holds_the_services_health_and_reflection() -> None:
    server = _server(diagnostics_pb2_grpc.add_DiagnosticsServiceServicer_to_server)
    assert {
        WHOAMI,
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    } <= server.methods.methods


@pytest.mark.parametrize(
    "add", [diagnostics_pb2_grpc.add_DiagnosticsServiceServicer_to_server, _generic_only]
)
async def test_the_pipeline_wraps_registered_and_generic_handlers(add: Any) -> None:
    server = _server(add)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.address) as ch:
            stub = diagnostics_pb2_grpc.DiagnosticsServiceStub(ch)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.WhoAmI(diagnostics_pb2.WhoAmIRequest(), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            token = TokenMinter(CONFIG).mint("rep-a1", "demo", ["rep"])
            for _ in range(2):  # the second call takes the handler wrapped by the first
                who = await stub.WhoAmI(
                    diagnostics_pb2.WhoAmIRequest(),
                    metadata=(("authorization", f"Bearer {token}"),),
                    timeout=5,
                )
                assert (who.user_id, who.service) == ("rep-a1", "leads")
            unknown = ch.unary_unary("/salesops.common.v1.DiagnosticsService/Nope", None, None)
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await unknown(b"", timeout=5)
            assert missing.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.stop(0)


def _started(service: str, method: str) -> list[float]:
    return [
        s.value
        for metric in RPC_STARTED.collect()
        for s in metric.samples
        if s.name.endswith("_total")
        and s.labels.get("grpc_service") == service
        and s.labels.get("grpc_method") == method
    ]


def test_a_method_never_called_has_no_series() -> None:
    metrics = MethodMetrics("/t.v1.Never/Called", "unary")
    assert _started("t.v1.Never", "Called") == []  # wrapped at startup, nothing exported yet
    metrics.start()
    assert _started("t.v1.Never", "Called") == [1.0]
