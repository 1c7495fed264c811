"""Configuration from environment variables; every variable is listed in docs/configuration.md.

One `Settings` per process. Service-specific values use the service name in the
variable, e.g. `SALESOPS_LEADS_DATABASE_URL`, so one shell can configure all five.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SERVICE_PORTS: dict[str, int] = {
    "leads": 50051,
    "pipeline": 50052,
    "knowledge": 50053,
    "integration": 50054,
    "notify": 50055,
}
SERVICES: tuple[str, ...] = tuple(SERVICE_PORTS)
ENVIRONMENTS: tuple[str, ...] = ("embedded", "production")


class ConfigError(ValueError):
    """A variable is present but unusable; the message names it."""


def env_str(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def deployment_environment(environ: Mapping[str, str] | None = None) -> str:
    """`SALESOPS_ENV`: ``embedded`` (default) or ``production``; anything else is refused."""
    raw = (os.environ if environ is None else environ).get("SALESOPS_ENV", "").strip()
    environment = raw or "embedded"
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"SALESOPS_ENV must be 'embedded' or 'production', got {environment!r}")
    return environment


def var_dir() -> Path:
    """Where embedded state lives (SQLite files, Temporal's database, Redis data)."""
    return Path(env_str("SALESOPS_VAR_DIR", "var")).resolve()


def service_address(service: str) -> str:
    """Where clients reach a service: `SALESOPS_<SVC>_ADDR`, default 127.0.0.1:<its port>."""
    return env_str(f"SALESOPS_{service.upper()}_ADDR", f"127.0.0.1:{SERVICE_PORTS[service]}")


def metrics_port() -> int | None:
    """`SALESOPS_METRICS_PORT`: where this process serves Prometheus `/metrics` (unset or 0: off)."""
    port = env_int("SALESOPS_METRICS_PORT", 0)
    if not 0 <= port <= 65535:
        raise ConfigError(f"SALESOPS_METRICS_PORT must be a port number, got {port}")
    return port or None


def metrics_host() -> str:
    """`SALESOPS_METRICS_HOST`: the metrics listener's address (0.0.0.0 in containers)."""
    return env_str("SALESOPS_METRICS_HOST", "127.0.0.1")


def redis_url() -> str:
    return env_str("SALESOPS_REDIS_URL", env_str("REDIS_URL", "redis://127.0.0.1:6379/0"))


@dataclass(frozen=True)
class GrpcSettings:
    listen: str
    reflection: bool
    grace_seconds: float
    default_deadline_seconds: float
    max_message_bytes: int
    keepalive_time_ms: int
    keepalive_timeout_ms: int
    # Clients re-resolve and rebalance when a connection ends: a replica started later gets
    # its share within this age (jittered by gRPC). The grace lets calls in flight finish.
    max_connection_age_ms: int = 120_000
    max_connection_age_grace_ms: int = 30_000
    # Several processes on one port (the kernel spreads connections): a test of rebalancing uses it.
    reuse_port: bool = False


@dataclass(frozen=True)
class Settings:
    service: str
    environment: str
    database_url: str
    redis_url: str
    temporal_address: str
    temporal_namespace: str
    task_queue: str
    migrate_on_start: bool
    health_interval_seconds: float
    grpc: GrpcSettings
    log_level: str
    log_format: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return self.environment == "embedded"

    @classmethod
    def from_env(cls, service: str) -> Settings:
        if service not in SERVICE_PORTS:
            raise ConfigError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
        prefix = f"SALESOPS_{service.upper()}_"
        environment = deployment_environment()
        default_db = f"sqlite+aiosqlite:///{var_dir() / (service + '.db')}"
        port = env_int(prefix + "PORT", SERVICE_PORTS[service])
        host = env_str("SALESOPS_GRPC_HOST", "127.0.0.1")
        return cls(
            service=service,
            environment=environment,
            database_url=env_str(prefix + "DATABASE_URL", default_db),
            redis_url=redis_url(),
            temporal_address=env_str("SALESOPS_TEMPORAL_ADDRESS", "127.0.0.1:7233"),
            temporal_namespace=env_str("SALESOPS_TEMPORAL_NAMESPACE", "default"),
            task_queue=env_str(prefix + "TASK_QUEUE", f"salesops-{service}"),
            migrate_on_start=env_bool("SALESOPS_MIGRATE_ON_START", environment == "embedded"),
            health_interval_seconds=env_float("SALESOPS_HEALTH_INTERVAL_SECONDS", 2.0),
            grpc=GrpcSettings(
                listen=env_str(prefix + "LISTEN", f"{host}:{port}"),
                # Reflection lists every RPC to anyone who can connect: a dev convenience.
                reflection=env_bool("SALESOPS_GRPC_REFLECTION", environment == "embedded"),
                grace_seconds=env_float("SALESOPS_GRPC_GRACE_SECONDS", 10.0),
                default_deadline_seconds=env_float("SALESOPS_GRPC_DEFAULT_DEADLINE_SECONDS", 10.0),
                max_message_bytes=env_int("SALESOPS_GRPC_MAX_MESSAGE_BYTES", 8 * 1024 * 1024),
                keepalive_time_ms=env_int("SALESOPS_GRPC_KEEPALIVE_TIME_MS", 30_000),
                keepalive_timeout_ms=env_int("SALESOPS_GRPC_KEEPALIVE_TIMEOUT_MS", 10_000),
                max_connection_age_ms=env_int("SALESOPS_GRPC_MAX_CONNECTION_AGE_MS", 120_000),
                max_connection_age_grace_ms=env_int("SALESOPS_GRPC_MAX_CONNECTION_AGE_GRACE_MS", 30_000),
                reuse_port=env_bool("SALESOPS_GRPC_REUSE_PORT", False),
            ),
            log_level=env_str("SALESOPS_LOG_LEVEL", "INFO").upper(),
            log_format=env_str("SALESOPS_LOG_FORMAT", "json"),
        )
