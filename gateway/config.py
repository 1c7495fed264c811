"""Gateway settings from the environment (listed in docs/configuration.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.bounds import RequestBounds
from kit.config import SERVICES, env_int, env_str, redis_url, service_address
from kit.config import env_float as _env_float


@dataclass(frozen=True)
class GatewaySettings:
    addresses: dict[str, str] = field(default_factory=lambda: {n: service_address(n) for n in SERVICES})
    redis_url: str = field(default_factory=redis_url)
    timeout_seconds: float = 10.0
    channels_per_backend: int = 2
    max_body_bytes: int = 1 << 20
    cors_origins: tuple[str, ...] = ()
    gzip_min_bytes: int = 1024
    # Rate limits: requests per window, per tenant and per user (0 = off).
    tenant_limit: int = 6000
    user_limit: int = 600
    window_seconds: int = 60
    idempotency_ttl_seconds: int = 24 * 3600
    batch_max_items: int = 100
    # JSON text of resources answered before, by their bytes (gateway.proto_json.MEMO); 0 = off.
    json_memo_bytes: int = 4 << 20
    bounds: RequestBounds = field(default_factory=RequestBounds)  # request sizes, address limit
    # Every Redis command of the gateway is short (a rate-limit check, an idempotency record): one
    # unanswered this long fails (rate limits then fail open) instead of holding requests forever.
    redis_timeout_seconds: float = 5.0

    @classmethod
    def from_env(cls) -> GatewaySettings:
        origins = env_str("SALESOPS_GATEWAY_CORS_ORIGINS", "")
        return cls(
            timeout_seconds=_env_float("SALESOPS_GATEWAY_TIMEOUT_SECONDS", 10.0),
            channels_per_backend=max(1, env_int("SALESOPS_GATEWAY_CHANNELS_PER_BACKEND", 2)),
            max_body_bytes=env_int("SALESOPS_GATEWAY_MAX_BODY_BYTES", 1 << 20),
            cors_origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
            gzip_min_bytes=env_int("SALESOPS_GATEWAY_GZIP_MIN_BYTES", 1024),
            tenant_limit=env_int("SALESOPS_GATEWAY_RATE_TENANT", 6000),
            user_limit=env_int("SALESOPS_GATEWAY_RATE_USER", 600),
            window_seconds=max(1, env_int("SALESOPS_GATEWAY_RATE_WINDOW_SECONDS", 60)),
            idempotency_ttl_seconds=env_int("SALESOPS_GATEWAY_IDEMPOTENCY_TTL_SECONDS", 24 * 3600),
            batch_max_items=env_int("SALESOPS_GATEWAY_BATCH_MAX_ITEMS", 100),
            json_memo_bytes=max(0, env_int("SALESOPS_GATEWAY_JSON_MEMO_BYTES", 4 << 20)),
            bounds=RequestBounds.from_env(),
            redis_timeout_seconds=_env_float("SALESOPS_GATEWAY_REDIS_TIMEOUT_SECONDS", 5.0),
        )
