"""kit.grpc.interceptors: a server stream closed from another task ends its span without an error.

At shutdown the event loop's async-generator finaliser closes the open streams (the live inbox) in
a task of its own; the trace context the stream attached lived in the serving task's context, and
OTel's detach from elsewhere logged "Failed to detach context" with a traceback per open stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from opentelemetry import context as otel_context

from kit.auth import AuthConfig, TokenVerifier
from kit.grpc.interceptors import ServerPipeline

METHOD = "/salesops.test.v1.Feed/Watch"


class _Ctx:
    """The parts of grpc.aio.ServicerContext the pipeline reads for a public stream."""

    def invocation_metadata(self) -> tuple[()]:
        return ()

    def time_remaining(self) -> None:
        return None

    def code(self) -> None:
        return None


async def _feed(request: Any, ctx: Any) -> AsyncIterator[otel_context.Context]:
    while True:
        yield otel_context.get_current()
        await asyncio.sleep(0)


def _stream() -> Any:
    pipeline = ServerPipeline("test", TokenVerifier(AuthConfig.from_env({})), 5.0, public=frozenset({METHOD}))
    handler: Any = pipeline.wrap(METHOD, grpc.unary_stream_rpc_method_handler(_feed))
    return handler.unary_stream(None, _Ctx())


async def test_a_stream_closed_by_another_task_logs_no_detach_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)

    async def serve() -> Any:
        stream = _stream()
        await stream.__anext__()  # attaches the stream's context in this task's context
        return stream

    stream = await asyncio.create_task(serve())
    await asyncio.create_task(stream.aclose())  # another task, as the loop's finaliser does
    assert not [r for r in caplog.records if "detach" in r.getMessage()]


async def test_a_stream_closed_by_its_own_task_restores_the_context() -> None:
    async def serve() -> tuple[Any, Any]:
        before = otel_context.get_current()
        stream = _stream()
        assert await stream.__anext__() is not before  # the handler ran in the stream's context
        await stream.aclose()
        return before, otel_context.get_current()

    before, after = await asyncio.create_task(serve())
    assert after is before
