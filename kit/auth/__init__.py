"""JWT verification and minting: who is calling, for which tenant, in which roles and org unit.

Every service verifies every call (partners call services directly), so `TokenVerifier`
loads and checks its keys once, at construction, and `verify` does no file or PEM work.
One algorithm is configured per deployment and only that algorithm is accepted: a token
whose header names another (``none``, or HS256 presented to an RS256 verifier, the
key-confusion attack) is refused before any key is touched. Tokens must carry ``exp``,
live no longer than the configured maximum, and name only whitelisted roles.

Environment (read by `AuthConfig.from_env`):

- ``SALESOPS_JWT_ALG``: HS256 (default), RS256 or ES256.
- ``SALESOPS_JWT_SECRET``: HS256 secret, at least 32 bytes. Unset means `DEV_SECRET`,
  for embedded/dev mode only: with ``SALESOPS_ENV=production`` it is refused and the
  process does not start (`require_production_ready`).
- ``SALESOPS_JWT_PUBLIC_KEY_FILE``: PEM public key (RS256/ES256) for verifying.
- ``SALESOPS_JWT_JWKS_FILE``: local JWKS JSON; a token's ``kid`` header selects the key.
- ``SALESOPS_JWT_PRIVATE_KEY_FILE``: PEM private key, or a JWK / JWKS JSON with private
  parts, for minting with RS256/ES256 (its public half also verifies when nothing else is set).
- ``SALESOPS_JWT_AUDIENCE``: required ``aud`` (default ``salesops``).
- ``SALESOPS_JWT_ISSUER``: required ``iss`` when set; minted tokens carry it.
- ``SALESOPS_JWT_LEEWAY_SECONDS``: clock-skew allowance for ``exp``/``nbf``/``iat`` (default 30).
- ``SALESOPS_JWT_MAX_LIFETIME``: longest accepted ``exp - iat`` (``exp - now`` without
  ``iat``), e.g. ``12h`` (default), ``30m``, ``7d``; the minter refuses longer lifetimes.

Claims: ``sub`` (user id), ``tenant``, ``roles`` (list of lower-case role names from
`KNOWN_ROLES`), ``org`` (org-unit path such as ``east/team-a``, empty for admin/service),
``exp``, ``iat``, ``aud``, ``iss``, ``jti`` (ULID) and ``scope`` (space-separated, partner keys).
"""

from __future__ import annotations

from kit.auth.config import (
    DEFAULT_AUDIENCE,
    DEFAULT_MAX_LIFETIME,
    DEV_SECRET,
    KNOWN_ROLES,
    SUPPORTED_ALGORITHMS,
    AuthConfig,
    AuthConfigError,
    AuthError,
    AuthReason,
    parse_duration,
)
from kit.auth.minter import TokenMinter
from kit.auth.principal import Principal
from kit.auth.verifier import TokenVerifier, require_production_ready

__all__ = [
    "DEFAULT_AUDIENCE",
    "DEFAULT_MAX_LIFETIME",
    "DEV_SECRET",
    "KNOWN_ROLES",
    "SUPPORTED_ALGORITHMS",
    "AuthConfig",
    "AuthConfigError",
    "AuthError",
    "AuthReason",
    "Principal",
    "TokenMinter",
    "TokenVerifier",
    "parse_duration",
    "require_production_ready",
]
