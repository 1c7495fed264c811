"""What the gateway answers: an `Outcome` (status, JSON body, headers) and the answers every path
shares (429 throttled, 401 unauthorized, 413 / 408 refused bodies, 500 with a reference)."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import status_pb2
from starlette.responses import Response

from gateway import errors as gw_errors
from gateway.ratelimit import Decision
from kit import errors
from kit.auth import AuthError

JSON = "application/json"


@dataclass
class Outcome:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON
    replayed: bool = False


class BodyRefused(Exception):
    """The request body is over its size (413) or arrives too slowly (408)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def outcome(self, headers: dict[str, str]) -> Outcome:
        code = grpc.StatusCode.DEADLINE_EXCEEDED if self.status == 408 else grpc.StatusCode.INVALID_ARGUMENT
        _, data = gw_errors.simple(code, str(self))
        return Outcome(self.status, data, headers)


def throttled(decision: Decision) -> Outcome:
    """429 with the limiter's headers and a RESOURCE_EXHAUSTED Status (QuotaFailure, RetryInfo)."""
    err = errors.ResourceExhausted(
        f"rate limit exceeded ({decision.blocked_by})",
        subject=decision.blocked_by,
        retry_after_seconds=decision.retry_after_seconds,
        reason="RATE_LIMITED",
    )
    status, data = gw_errors.from_error(err)
    return Outcome(status, data, dict(decision.headers))


def unauthorized(exc: AuthError) -> Outcome:
    _, data = gw_errors.simple(grpc.StatusCode.UNAUTHENTICATED, f"authentication failed: {exc.reason}")
    error = "invalid_request" if exc.reason == "missing" else "invalid_token"
    challenge = f'Bearer realm="salesops", error="{error}", error_description="{exc.reason}"'
    if exc.reason == "missing":
        challenge = 'Bearer realm="salesops"'
    return Outcome(401, data, {"WWW-Authenticate": challenge})


def internal_error(request_id: str) -> Response:
    status = status_pb2.Status(code=13, message=f"internal error (reference {request_id})")
    return respond(Outcome(500, gw_errors.status_json(status)))


def respond(outcome: Outcome) -> Response:
    return Response(outcome.body, outcome.status, outcome.headers, media_type=outcome.content_type)
