"""Authentication settings, refusal reasons and the production gate."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Final, Literal, TypeAlias

from kit.config import ConfigError, deployment_environment

DEV_SECRET: Final = "salesops-dev-secret-change-me-in-production"
"""HS256 secret used when ``SALESOPS_JWT_SECRET`` is unset. Public knowledge: dev only."""

DEFAULT_AUDIENCE: Final = "salesops"
DEFAULT_LEEWAY_SECONDS: Final = 30
DEFAULT_MAX_LIFETIME: Final = timedelta(hours=12)
SUPPORTED_ALGORITHMS: Final = frozenset({"HS256", "RS256", "ES256"})
KNOWN_ROLES: Final = frozenset({"rep", "supervisor", "director", "admin", "approver", "partner", "service"})
"""The role whitelist: a token naming any other role is refused, minted or presented."""
SERVICE_SUBJECT_PREFIX: Final = "service:"

MIN_HMAC_SECRET_BYTES: Final = 32
MIN_RSA_KEY_BITS: Final = 2048
MAX_TOKEN_CHARS: Final = 8192
"""Longer tokens are refused as malformed before any parsing (cheap DoS guard)."""

AuthReason: TypeAlias = Literal[
    "missing",
    "malformed",
    "expired",
    "not_yet_valid",
    "bad_signature",
    "bad_algorithm",
    "wrong_audience",
    "wrong_issuer",
    "missing_claim",
    "invalid_claim",
    "unknown_key",
    "unknown_role",
    "lifetime_too_long",
]

PRODUCTION_DEV_SECRET: Final = (
    "SALESOPS_ENV=production refuses to start: SALESOPS_JWT_SECRET is unset or is the documented "
    "dev secret, with which anyone can mint admin tokens. Set SALESOPS_JWT_SECRET to at least "
    f"{MIN_HMAC_SECRET_BYTES} random bytes (python -c 'import secrets; print(secrets.token_urlsafe(48))') "
    "or use RS256/ES256 keys (SALESOPS_JWT_ALG with SALESOPS_JWT_PUBLIC_KEY_FILE or SALESOPS_JWT_JWKS_FILE)."
)


class AuthError(Exception):
    """A token was refused. `reason` is a stable code (see `AuthReason`); `detail` is for logs.

    Neither ever contains the token itself.
    """

    def __init__(self, reason: AuthReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: AuthReason = reason
        self.detail = detail


class AuthConfigError(ConfigError):
    """Authentication settings or key files are unusable; the message names what is wrong."""


_DURATION_PART = re.compile(r"(\d+)([smhdw])")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``90`` (seconds), ``30m``, ``12h``, ``7d``, ``1h30m``...; ValueError otherwise or if not positive."""
    value = text.strip().lower()
    if value.isdigit():
        duration = timedelta(seconds=int(value))
    else:
        parts = _DURATION_PART.findall(value)
        if not value or "".join(number + unit for number, unit in parts) != value:
            raise ValueError(f"invalid duration {text!r} (examples: 90, 30m, 12h, 7d, 1h30m)")
        duration = timedelta()
        for number, unit in parts:
            duration += timedelta(**{_DURATION_UNITS[unit]: int(number)})
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    return duration


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _env_path(environ: Mapping[str, str], name: str) -> Path | None:
    value = _env(environ, name)
    return Path(value).expanduser() if value else None


@dataclass(frozen=True)
class AuthConfig:
    """How tokens are signed and checked. Build with `from_env()`; the defaults are dev mode.

    With ``environment="production"`` the public dev secret (set, or used because no key is
    configured) is refused at construction, so no process can verify or mint with it there.
    """

    alg: str = "HS256"
    secret: bytes | None = field(default=None, repr=False)
    public_key_file: Path | None = None
    jwks_file: Path | None = None
    private_key_file: Path | None = None
    audience: str = DEFAULT_AUDIENCE
    issuer: str | None = None
    leeway_seconds: int = DEFAULT_LEEWAY_SECONDS
    max_lifetime: timedelta = DEFAULT_MAX_LIFETIME
    environment: str = "embedded"

    def __post_init__(self) -> None:
        if self.alg not in SUPPORTED_ALGORITHMS:
            raise AuthConfigError(
                f"SALESOPS_JWT_ALG must be one of {', '.join(sorted(SUPPORTED_ALGORITHMS))}, got {self.alg!r}"
            )
        if self.alg == "HS256" and self.secret is None and self.jwks_file is None:
            object.__setattr__(self, "secret", DEV_SECRET.encode())
        if self.secret is not None and len(self.secret) < MIN_HMAC_SECRET_BYTES:
            raise AuthConfigError(
                f"SALESOPS_JWT_SECRET must be at least {MIN_HMAC_SECRET_BYTES} bytes, got {len(self.secret)}"
            )
        if self.alg != "HS256" and not (self.public_key_file or self.jwks_file or self.private_key_file):
            raise AuthConfigError(
                f"SALESOPS_JWT_ALG={self.alg} needs SALESOPS_JWT_PUBLIC_KEY_FILE, SALESOPS_JWT_JWKS_FILE "
                "or SALESOPS_JWT_PRIVATE_KEY_FILE"
            )
        if not self.audience:
            raise AuthConfigError("SALESOPS_JWT_AUDIENCE must not be empty")
        if self.leeway_seconds < 0:
            raise AuthConfigError(f"SALESOPS_JWT_LEEWAY_SECONDS must be >= 0, got {self.leeway_seconds}")
        if self.max_lifetime <= timedelta(0):
            raise AuthConfigError(f"SALESOPS_JWT_MAX_LIFETIME must be positive, got {self.max_lifetime}")
        self.check_environment(self.environment)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuthConfig:
        env = os.environ if environ is None else environ
        raw_leeway = _env(env, "SALESOPS_JWT_LEEWAY_SECONDS")
        try:
            leeway = DEFAULT_LEEWAY_SECONDS if raw_leeway is None else int(raw_leeway)
        except ValueError as exc:
            raise AuthConfigError(
                f"SALESOPS_JWT_LEEWAY_SECONDS must be an integer, got {raw_leeway!r}"
            ) from exc
        raw_lifetime = _env(env, "SALESOPS_JWT_MAX_LIFETIME")
        try:
            max_lifetime = DEFAULT_MAX_LIFETIME if raw_lifetime is None else parse_duration(raw_lifetime)
        except ValueError as exc:
            raise AuthConfigError(f"SALESOPS_JWT_MAX_LIFETIME: {exc}") from exc
        secret = _env(env, "SALESOPS_JWT_SECRET")
        return cls(
            alg=(_env(env, "SALESOPS_JWT_ALG") or "HS256").upper(),
            secret=secret.encode() if secret else None,
            public_key_file=_env_path(env, "SALESOPS_JWT_PUBLIC_KEY_FILE"),
            jwks_file=_env_path(env, "SALESOPS_JWT_JWKS_FILE"),
            private_key_file=_env_path(env, "SALESOPS_JWT_PRIVATE_KEY_FILE"),
            audience=_env(env, "SALESOPS_JWT_AUDIENCE") or DEFAULT_AUDIENCE,
            issuer=_env(env, "SALESOPS_JWT_ISSUER"),
            leeway_seconds=leeway,
            max_lifetime=max_lifetime,
            environment=deployment_environment(env),
        )

    @property
    def uses_dev_secret(self) -> bool:
        """True when tokens are signed/checked with the public `DEV_SECRET`: never in production."""
        return self.alg == "HS256" and self.secret == DEV_SECRET.encode()

    def check_environment(self, environment: str) -> None:
        """Raise `AuthConfigError` if this configuration must not run in `environment`.

        Production with the public dev secret is refused: anyone could mint admin tokens.
        """
        if environment == "production" and self.uses_dev_secret:
            raise AuthConfigError(PRODUCTION_DEV_SECRET)
