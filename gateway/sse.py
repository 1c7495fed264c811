"""Server-streaming RPCs served as Server-Sent Events: the response that ends the gRPC stream
however the client leaves, and one proto message as one SSE event (its cursor as the event id,
so a client resumes with Last-Event-ID)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.routes import Route
from gateway.transcode import to_json_bytes


class SSEResponse(StreamingResponse):
    """Cancels the gRPC stream and reports the close however the response ends, even when the
    client left before the first event was sent (the event generator then never runs)."""

    def __init__(self, content: AsyncIterator[bytes], cancel: Callable[[], Any], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.cancel = cancel
        self.on_close: Callable[[], None] = lambda: None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.cancel()
            self.on_close()


def sse_event(route: Route, message: Any) -> bytes:
    data = to_json_bytes(route, message)
    cursor = getattr(message, "cursor", "") if "cursor" in message.DESCRIPTOR.fields_by_name else ""
    head = f"id: {cursor}\n".encode() if cursor else b""
    return head + b"event: message\ndata: " + data + b"\n\n"
