"""Token minting: the configured algorithm and key, lifetimes within the configured maximum."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import jwt
from ulid import ULID

from kit.auth.config import KNOWN_ROLES, SERVICE_SUBJECT_PREFIX, AuthConfig, AuthConfigError
from kit.auth.keys import SignKey, fingerprint, load_jwks, load_private
from kit.auth.principal import org_segments

USER_TTL: Final = timedelta(hours=12)
SERVICE_TTL: Final = timedelta(hours=1)

# Claims the minter sets itself; `extra` may not override them.
_RESERVED_CLAIMS: Final = frozenset(
    {"sub", "tenant", "roles", "org", "scope", "iat", "exp", "nbf", "aud", "iss", "jti"}
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TokenMinter:
    """Signs tokens with the configured algorithm and key (loaded once)."""

    def __init__(self, config: AuthConfig, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._config = config
        self._clock = clock
        kid: str | None = None
        key: SignKey
        if config.alg == "HS256":
            if config.secret is None:
                raise AuthConfigError("minting HS256 tokens needs SALESOPS_JWT_SECRET")
            key = config.secret
        else:
            if config.private_key_file is None:
                raise AuthConfigError(f"minting {config.alg} tokens needs SALESOPS_JWT_PRIVATE_KEY_FILE")
            key, kid = load_private(config.private_key_file, config.alg)
        if kid is None and config.jwks_file is not None:
            # Name the key as the verifiers' key set does, so they can select it by kid.
            by_kid, _ = load_jwks(config.jwks_file, config.alg)
            mine = fingerprint(key)
            kid = next((k for k, v in by_kid.items() if fingerprint(v) == mine), None)
        self._key = key
        self._headers: dict[str, Any] | None = {"kid": kid} if kid else None

    @property
    def config(self) -> AuthConfig:
        return self._config

    @property
    def key_id(self) -> str | None:
        return None if self._headers is None else str(self._headers["kid"])

    def mint(
        self,
        sub: str,
        tenant: str,
        roles: Iterable[str],
        org: str = "",
        ttl: timedelta | None = None,
        scopes: Iterable[str] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Return a signed token. `ttl` defaults to 12 h, or the configured maximum if lower.

        Raises ValueError for unusable arguments, a lifetime beyond the maximum included:
        verifiers would refuse such a token.
        """
        if not sub or not tenant:
            raise ValueError("sub and tenant must not be empty")
        role_list = sorted(set(roles))
        unknown = [role for role in role_list if role not in KNOWN_ROLES]
        if unknown:
            raise ValueError(f"unknown roles {unknown}; known: {', '.join(sorted(KNOWN_ROLES))}")
        ttl = min(USER_TTL, self._config.max_lifetime) if ttl is None else ttl
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        if ttl > self._config.max_lifetime:
            raise ValueError(
                f"ttl {ttl} exceeds the maximum token lifetime {self._config.max_lifetime} "
                "(SALESOPS_JWT_MAX_LIFETIME)"
            )
        if org and org_segments(org) is None:
            raise ValueError(f"org {org!r} is not an org-unit path")
        scope_list = sorted(set(scopes))
        if any(not scope or scope.split() != [scope] for scope in scope_list):
            raise ValueError("scopes must be non-empty and contain no whitespace")
        clash = sorted(_RESERVED_CLAIMS.intersection(extra or {}))
        if clash:
            raise ValueError(f"extra may not set {clash}")

        now = self._clock()
        claims: dict[str, Any] = dict(extra or {})
        claims.update(
            sub=sub,
            tenant=tenant,
            roles=role_list,
            org=org.strip("/"),
            iat=int(now.timestamp()),
            exp=int((now + ttl).timestamp()),
            aud=self._config.audience,
            jti=str(ULID()),
        )
        if self._config.issuer:
            claims["iss"] = self._config.issuer
        if scope_list:
            claims["scope"] = " ".join(scope_list)
        return jwt.encode(claims, self._key, algorithm=self._config.alg, headers=self._headers)

    def mint_service_token(self, service_name: str, tenant: str, ttl: timedelta | None = None) -> str:
        """A token for service-to-service calls: sub ``service:<name>``, role ``service``, 1 h by default."""
        if not service_name:
            raise ValueError("service_name must not be empty")
        ttl = min(SERVICE_TTL, self._config.max_lifetime) if ttl is None else ttl
        return self.mint(f"{SERVICE_SUBJECT_PREFIX}{service_name}", tenant, ["service"], ttl=ttl)
