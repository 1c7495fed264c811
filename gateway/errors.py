"""gRPC status -> HTTP status and a JSON `google.rpc.Status` body (details included)."""

from __future__ import annotations

import json

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

from kit import errors
from kit.grpc.errors import to_status_proto

# The table of ARCHITECTURE.md; anything else is 500.
HTTP_BY_CODE: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
_CODE_BY_NUMBER = {c.value[0]: c for c in grpc.StatusCode}
# json.dumps(body, separators=...) builds a new encoder on every call; this one is reused.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def http_status(code: int) -> int:
    found = _CODE_BY_NUMBER.get(code)
    return HTTP_BY_CODE.get(found, 500) if found is not None else 500


def status_json(status: status_pb2.Status) -> bytes:
    try:
        body = json_format.MessageToDict(status)
    except (TypeError, KeyError, json_format.Error):
        # A detail type this process does not know: keep code and message.
        body = {"code": status.code, "message": status.message}
    body.setdefault("code", status.code)
    body.setdefault("message", status.message)
    return _COMPACT.encode(body).encode()


def retry_after(status: status_pb2.Status) -> str | None:
    """Seconds from a google.rpc.RetryInfo detail, for the HTTP Retry-After header."""
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            delay = info.retry_delay
            return str(max(1, delay.seconds + (1 if delay.nanos > 0 else 0)))
    return None


def from_error(err: errors.SalesopsError) -> tuple[int, bytes]:
    status = to_status_proto(err, "gateway")
    return http_status(status.code), status_json(status)


def simple(code: grpc.StatusCode, message: str) -> tuple[int, bytes]:
    status = status_pb2.Status(code=code.value[0], message=message)
    return HTTP_BY_CODE.get(code, 500), status_json(status)
