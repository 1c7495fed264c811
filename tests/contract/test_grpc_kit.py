"""The kit's gRPC pipeline on a real grpc.aio server: auth, errors, deadlines, health, graceful stop."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from deploy.local.infra import free_port, start_redis
from kit import errors
from kit.auth import AuthConfig, TokenMinter, TokenVerifier
from kit.config import GrpcSettings
from kit.grpc import context as call
from kit.grpc.client import channel as make_channel
from kit.grpc.errors import status_from_error
from kit.grpc.health import LIVENESS, ReadinessMonitor
from kit.grpc.server import GrpcServer, Registration
from salesops.common.v1 import diagnostics_pb2, diagnostics_pb2_grpc

CONFIG = AuthConfig.from_env({})
MINTER = TokenMinter(CONFIG)
GOOD = MINTER.mint("rep-a1", "demo", ["rep"], org="east/team-a")


class Probe(diagnostics_pb2_grpc.DiagnosticsServiceServicer):
    """WhoAmI whose behaviour the test picks through the `x-probe` metadata."""

    def __init__(self) -> None:
        self.inbound_remaining: list[float | None] = []
        self.peer: str = ""

    async def WhoAmI(self, request: diagnostics_pb2.WhoAmIRequest, context: grpc.aio.ServicerContext):  # type: ignore[no-untyped-def]
        probe = dict(context.invocation_metadata() or ()).get("x-probe", "")
        if probe == "invalid":
            v = errors.Violations()
            v.add("lead.phone", "not a valid CN mobile number")
            v.add("lead.email", "missing @")
            v.raise_if_any()
        if probe == "gate":
            raise errors.FailedPrecondition(
                "gate review refused the move",
                [errors.PreconditionViolation("GATE_EVIDENCE", "quote", "no quote uploaded")],
                reason="GATE_REFUSED",
            )
        if probe == "missing":
            raise errors.NotFound("lead", "01JAAAAAAAAAAAAAAAAAAAAAAA")
        if probe == "caps":
            raise errors.ResourceExhausted(
                "daily claim cap reached", subject="rep-a1", retry_after_seconds=60
            )
        if probe == "bug":
            raise RuntimeError("secret internals: password=hunter2")
        if probe == "slow":
            await asyncio.sleep(float(dict(context.invocation_metadata() or ()).get("x-sleep", "1")))
        if probe == "forward" and self.peer:
            async with make_channel(self.peer) as ch:
                await diagnostics_pb2_grpc.DiagnosticsServiceStub(ch).WhoAmI(
                    diagnostics_pb2.WhoAmIRequest(), metadata=(("x-probe", "record"),)
                )
        if probe == "record":
            self.inbound_remaining.append(context.time_remaining())
        who = call.principal()
        return diagnostics_pb2.WhoAmIResponse(user_id=who.user_id, tenant=who.tenant, service="probe")


def settings(default_deadline: float = 5.0) -> GrpcSettings:
    return GrpcSettings(
        listen=f"127.0.0.1:{free_port()}",
        reflection=True,
        grace_seconds=5.0,
        default_deadline_seconds=default_deadline,
        max_message_bytes=4 * 1024 * 1024,
        keepalive_time_ms=30_000,
        keepalive_timeout_ms=10_000,
    )


def build(probe: Probe, default_deadline: float = 5.0) -> GrpcServer:
    reg = Registration(
        diagnostics_pb2_grpc.add_DiagnosticsServiceServicer_to_server,
        probe,
        "salesops.common.v1.DiagnosticsService",
    )
    return GrpcServer("probe", settings(default_deadline), TokenVerifier(CONFIG), [reg])


@pytest.fixture
async def server() -> AsyncIterator[tuple[GrpcServer, Probe]]:
    probe = Probe()
    srv = build(probe)
    await srv.start()
    yield srv, probe
    await srv.stop(0)


async def call_probe(
    srv: GrpcServer, probe: str = "", token: str | None = GOOD, timeout: float | None = 5, **extra: str
) -> diagnostics_pb2.WhoAmIResponse:
    metadata = [("x-probe", probe), *extra.items()]
    if token is not None:
        metadata.append(("authorization", f"Bearer {token}"))
    async with grpc.aio.insecure_channel(srv.address) as ch:
        stub = diagnostics_pb2_grpc.DiagnosticsServiceStub(ch)
        return await stub.WhoAmI(diagnostics_pb2.WhoAmIRequest(), metadata=metadata, timeout=timeout)


def _b64(obj: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _refused_tokens() -> dict[str, str | None]:
    other = TokenMinter(replace(CONFIG, secret=b"another-secret-that-is-32-bytes-long!"))
    claims = {
        "sub": "x",
        "tenant": "demo",
        "roles": ["rep"],
        "aud": "salesops",
        "exp": int(time.time()) + 600,
    }
    return {
        "missing": None,
        "garbage": "not-a-jwt",
        "expired": _expired(),
        "bad_signature": other.mint("x", "demo", ["rep"]),
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "wrong_audience": TokenMinter(replace(CONFIG, audience="someone-else")).mint("x", "demo", ["rep"]),
    }


def _expired() -> str:
    import jwt

    now = int(time.time())
    claims = {
        "sub": "x",
        "tenant": "demo",
        "roles": ["rep"],
        "aud": "salesops",
        "iat": now - 7200,
        "exp": now - 3600,
    }
    return jwt.encode(claims, CONFIG.secret, algorithm="HS256")  # type: ignore[arg-type]


@pytest.mark.parametrize("case", list(_refused_tokens()))
async def test_auth_refusals(server: tuple[GrpcServer, Probe], case: str) -> None:
    srv, _ = server
    token = _refused_tokens()[case]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call_probe(srv, token=token)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "authentication failed" in (info.value.details() or "")
    assert ("www-authenticate", 'Bearer realm="salesops"') in tuple(info.value.initial_metadata() or ())


async def test_valid_token_reaches_handler(server: tuple[GrpcServer, Probe]) -> None:
    srv, _ = server
    reply = await call_probe(srv)
    assert (reply.user_id, reply.tenant) == ("rep-a1", "demo")


async def test_health_and_reflection_need_no_token(server: tuple[GrpcServer, Probe]) -> None:
    srv, _ = server
    async with grpc.aio.insecure_channel(srv.address) as ch:
        reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2)
    # Nothing has declared readiness yet: a fresh server is NOT_SERVING.
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


def _details(exc: grpc.aio.AioRpcError) -> list[object]:
    status = status_from_error(exc)
    found = []
    for any_ in status.details:
        for cls in (
            error_details_pb2.BadRequest,
            error_details_pb2.PreconditionFailure,
            error_details_pb2.ResourceInfo,
            error_details_pb2.QuotaFailure,
            error_details_pb2.RetryInfo,
            error_details_pb2.ErrorInfo,
        ):
            if any_.Is(cls.DESCRIPTOR):
                msg = cls()
                any_.Unpack(msg)
                found.append(msg)
    return found


async def test_invalid_argument_carries_every_field_violation(server: tuple[GrpcServer, Probe]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call_probe(server[0], "invalid")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (bad,) = _details(info.value)
    assert isinstance(bad, error_details_pb2.BadRequest)
    assert [v.field for v in bad.field_violations] == ["lead.phone", "lead.email"]


async def test_failed_precondition_lists_missing_items_and_reason(server: tuple[GrpcServer, Probe]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call_probe(server[0], "gate")
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    failure, error_info = _details(info.value)
    assert isinstance(failure, error_details_pb2.PreconditionFailure)
    assert failure.violations[0].subject == "quote"
    assert isinstance(error_info, error_details_pb2.ErrorInfo)
    assert (error_info.reason, error_info.domain) == ("GATE_REFUSED", "probe.salesops")


async def test_not_found_and_quota_details(server: tuple[GrpcServer, Probe]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call_probe(server[0], "missing")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    (resource,) = _details(info.value)
    assert isinstance(resource, error_details_pb2.ResourceInfo)
    assert resource.resource_type == "lead"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call_probe(server[0], "caps")
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    _quota, retry = _details(info.value)
    assert isinstance(retry, error_details_pb2.RetryInfo)
    assert retry.retry_delay.seconds == 60


async def test_unexpected_error_is_internal_without_internals(server: tuple[GrpcServer, Probe]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call_probe(server[0], "bug")
    assert info.value.code() == grpc.StatusCode.INTERNAL
    text = info.value.details() or ""
    assert "hunter2" not in text and "RuntimeError" not in text
    assert text.startswith("internal error (reference ")


async def test_default_deadline_applies_when_client_sets_none() -> None:
    srv = build(Probe(), default_deadline=0.3)
    await srv.start()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call_probe(srv, "slow", timeout=None, **{"x-sleep": "3"})
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        await srv.stop(0)


async def test_deadline_propagates_to_outbound_calls() -> None:
    upstream, downstream = Probe(), Probe()
    srv_up, srv_down = build(upstream), build(downstream)
    await srv_up.start()
    await srv_down.start()
    upstream.peer = srv_down.address
    try:
        # 4 s, not 1.5: two fresh channels' first calls took longer than 1.5 s under a busy suite
        # (fresh-clone make test, DEADLINE_EXCEEDED); still under both the servers' 5 s default and the
        # outbound 10 s one.
        reply = await call_probe(srv_up, "forward", timeout=4.0)
        assert reply.user_id == "rep-a1"
        (remaining,) = downstream.inbound_remaining
        # The downstream call inherited what was left of the 4 s, not the 10 s client default
        # (grpc-timeout travels with coarse units that round up, hence the small margin).
        assert remaining is not None and remaining < 4.1
    finally:
        await srv_up.stop(0)
        await srv_down.stop(0)


async def test_graceful_stop_finishes_calls_in_flight() -> None:
    srv = build(Probe())
    await srv.start()
    in_flight = [asyncio.create_task(call_probe(srv, "slow", **{"x-sleep": "0.8"})) for _ in range(5)]
    await asyncio.sleep(0.3)
    await srv.stop(grace=5)
    replies = await asyncio.gather(*in_flight)
    assert all(r.user_id == "rep-a1" for r in replies)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call_probe(srv, timeout=1)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def _health(address: str) -> int:
    async with grpc.aio.insecure_channel(address) as ch:
        reply = await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service="salesops.common.v1.DiagnosticsService"), timeout=2
        )
    return int(reply.status)


async def _until(pred: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await pred():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_health_follows_redis_down_and_back(tmp_path: Path) -> None:
    """A private Redis (never the machine's): stopped, health goes NOT_SERVING; back, SERVING."""
    port = free_port()
    redis_proc = start_redis(tmp_path / "redis", port, persist=False)
    client = aioredis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
    srv = build(Probe())
    await srv.start()
    monitor = ReadinessMonitor(
        srv.health, srv.service_names, {"redis": client.ping}, interval=0.1, timeout=0.5
    )
    monitor.start()
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
    try:
        await _until(lambda: _is(srv.address, serving))
        redis_proc.stop()
        await _until(lambda: _is(srv.address, not_serving))
        assert "redis" in monitor.failing
        redis_proc = start_redis(tmp_path / "redis", port, persist=False)
        await _until(lambda: _is(srv.address, serving))
    finally:
        await monitor.stop()
        await srv.stop(0)
        await client.aclose()
        redis_proc.stop()


async def _is(address: str, status: int) -> bool:
    return await _health(address) == status


async def _live(address: str) -> int:
    async with grpc.aio.insecure_channel(address) as ch:
        reply = await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service=LIVENESS), timeout=2
        )
    return int(reply.status)


async def test_liveness_is_apart_from_readiness(tmp_path: Path) -> None:
    """Liveness only says the process is alive and not wedged: SERVING before the dependencies are
    up and while one is down (restarting cures no outage); NOT_SERVING once its monitor stops
    completing rounds; readiness (\"\" and the services) follows the dependencies."""
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
    port = free_port()
    redis_proc = start_redis(tmp_path / "redis", port, persist=False)
    client = aioredis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
    srv = build(Probe())
    await srv.start()
    assert await _live(srv.address) == serving  # alive before any readiness round
    assert await _health(srv.address) == not_serving
    monitor = ReadinessMonitor(
        srv.health, srv.service_names, {"redis": client.ping}, interval=0.1, timeout=0.5
    )
    monitor.start()
    try:
        await _until(lambda: _is(srv.address, serving))
        redis_proc.stop()
        await _until(lambda: _is(srv.address, not_serving))
        assert await _live(srv.address) == serving  # a dependency down is readiness, not liveness
        # A monitor that no longer completes rounds (here: its loop gone) means a wedged process.
        monitor.stall_after = 0.2
        assert monitor._task is not None
        monitor._task.cancel()
        await _until(lambda: _live_is(srv.address, not_serving))
    finally:
        await monitor.stop()
        await srv.stop(0)
        await client.aclose()
        redis_proc.stop()


async def _live_is(address: str, status: int) -> bool:
    return await _live(address) == status
