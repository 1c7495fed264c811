"""Typed errors that services raise and the gRPC layer maps to status + details.

Pure Python on purpose: `domain/` code may raise these without importing gRPC.
kit/grpc/errors.py turns them into `google.rpc.Status` with BadRequest,
PreconditionFailure, ResourceInfo and ErrorInfo details.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldViolation:
    """A request field that is wrong: `field` is a dotted path such as `lead.phone`."""

    field: str
    description: str


@dataclass(frozen=True)
class PreconditionViolation:
    """A missing precondition, e.g. type `GATE_EVIDENCE`, subject `quote`, why it is missing."""

    type: str
    subject: str
    description: str


class SalesopsError(Exception):
    """Base of every error a client is meant to see. `reason` is a stable UPPER_SNAKE code."""

    code_name = "UNKNOWN"

    def __init__(self, message: str, *, reason: str = "", metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.metadata = dict(metadata or {})


class InvalidArgument(SalesopsError):
    code_name = "INVALID_ARGUMENT"

    def __init__(
        self, message: str, violations: list[FieldViolation] | None = None, *, reason: str = ""
    ) -> None:
        super().__init__(message, reason=reason)
        self.violations = list(violations or [])

    @classmethod
    def field(cls, field_path: str, description: str) -> InvalidArgument:
        return cls(f"{field_path}: {description}", [FieldViolation(field_path, description)])


class FailedPrecondition(SalesopsError):
    code_name = "FAILED_PRECONDITION"

    def __init__(
        self, message: str, violations: list[PreconditionViolation] | None = None, *, reason: str = ""
    ) -> None:
        super().__init__(message, reason=reason)
        self.violations = list(violations or [])


class OutOfRange(SalesopsError):
    code_name = "OUT_OF_RANGE"


@dataclass
class _Resource:
    resource_type: str
    resource_name: str
    owner: str = ""
    description: str = ""


class NotFound(SalesopsError):
    code_name = "NOT_FOUND"

    def __init__(self, resource_type: str, resource_name: str, message: str = "") -> None:
        super().__init__(message or f"{resource_type} {resource_name!r} not found")
        self.resource = _Resource(resource_type, resource_name)


class AlreadyExists(SalesopsError):
    code_name = "ALREADY_EXISTS"

    def __init__(self, resource_type: str, resource_name: str, message: str = "") -> None:
        super().__init__(message or f"{resource_type} {resource_name!r} already exists")
        self.resource = _Resource(resource_type, resource_name)


class Aborted(SalesopsError):
    """A concurrent change won (compare-and-set lost); the client may retry."""

    code_name = "ABORTED"


class PermissionDenied(SalesopsError):
    code_name = "PERMISSION_DENIED"


class Unauthenticated(SalesopsError):
    code_name = "UNAUTHENTICATED"


@dataclass
class _Quota:
    subject: str
    description: str


class ResourceExhausted(SalesopsError):
    """A cap or rate limit was hit; `retry_after_seconds` when waiting helps."""

    code_name = "RESOURCE_EXHAUSTED"

    def __init__(
        self, message: str, *, subject: str = "", retry_after_seconds: float | None = None, reason: str = ""
    ) -> None:
        super().__init__(message, reason=reason)
        self.quota = _Quota(subject, message)
        self.retry_after_seconds = retry_after_seconds


class Unavailable(SalesopsError):
    """A dependency is down; safe to retry with back-off."""

    code_name = "UNAVAILABLE"


class Unimplemented(SalesopsError):
    code_name = "UNIMPLEMENTED"


@dataclass
class Violations:
    """Collects field violations so a request reports every problem at once."""

    items: list[FieldViolation] = field(default_factory=list)

    def add(self, field_path: str, description: str) -> None:
        self.items.append(FieldViolation(field_path, description))

    def raise_if_any(self, message: str = "invalid request") -> None:
        if self.items:
            summary = "; ".join(f"{v.field}: {v.description}" for v in self.items[:3])
            raise InvalidArgument(f"{message}: {summary}", self.items)
