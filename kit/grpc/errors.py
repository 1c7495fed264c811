"""Map kit.errors to gRPC status with google.rpc details, and back for clients."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from kit import errors

DOMAIN = "salesops"


def _pack(msg: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(msg)  # type: ignore[arg-type]
    return packed


def to_status_proto(err: errors.SalesopsError, service: str = "") -> status_pb2.Status:
    code = getattr(code_pb2, err.code_name)
    status = status_pb2.Status(code=code, message=err.message)
    details = status.details
    if isinstance(err, errors.InvalidArgument) and err.violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                        for v in err.violations
                    ]
                )
            )
        )
    if isinstance(err, errors.FailedPrecondition) and err.violations:
        details.append(
            _pack(
                error_details_pb2.PreconditionFailure(
                    violations=[
                        error_details_pb2.PreconditionFailure.Violation(
                            type=v.type, subject=v.subject, description=v.description
                        )
                        for v in err.violations
                    ]
                )
            )
        )
    if isinstance(err, errors.NotFound | errors.AlreadyExists):
        details.append(
            _pack(
                error_details_pb2.ResourceInfo(
                    resource_type=err.resource.resource_type,
                    resource_name=err.resource.resource_name,
                    description=err.message,
                )
            )
        )
    if isinstance(err, errors.ResourceExhausted):
        details.append(
            _pack(
                error_details_pb2.QuotaFailure(
                    violations=[
                        error_details_pb2.QuotaFailure.Violation(
                            subject=err.quota.subject, description=err.quota.description
                        )
                    ]
                )
            )
        )
        if err.retry_after_seconds is not None:
            delay = duration_pb2.Duration()
            delay.FromMilliseconds(int(err.retry_after_seconds * 1000))
            details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    if err.reason:
        details.append(
            _pack(
                error_details_pb2.ErrorInfo(
                    reason=err.reason,
                    domain=f"{service}.{DOMAIN}" if service else DOMAIN,
                    metadata=err.metadata,
                )
            )
        )
    return status


def to_grpc_status(err: errors.SalesopsError, service: str = "") -> grpc.Status:
    return rpc_status.to_status(to_status_proto(err, service))


def internal_status(reference: str) -> grpc.Status:
    """What a client sees for a bug: a reference to find the log line, never internals."""
    message = f"internal error (reference {reference})" if reference else "internal error"
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.INTERNAL, message=message))


def status_from_error(exc: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The rich status a server sent (details included), for clients and the gateway."""
    found = rpc_status.from_call(exc)  # type: ignore[arg-type]
    if found is not None:
        return found  # type: ignore[no-any-return]
    return status_pb2.Status(code=exc.code().value[0], message=exc.details() or "")
