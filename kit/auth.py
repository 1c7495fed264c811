"""JWT verification and minting: who is calling, for which tenant, in which roles and org unit.

Every service verifies every call (partners call services directly), so `TokenVerifier`
loads and checks its keys once, at construction, and `verify` does no file or PEM work.
One algorithm is configured per deployment and only that algorithm is accepted: a token
whose header names another (``none``, or HS256 presented to an RS256 verifier, the
key-confusion attack) is refused before any key is touched.

Environment (read by `AuthConfig.from_env`):

- ``SALESOPS_JWT_ALG``: HS256 (default), RS256 or ES256.
- ``SALESOPS_JWT_SECRET``: HS256 secret, at least 32 bytes. Unset means `DEV_SECRET`,
  for embedded/dev mode only (`AuthConfig.uses_dev_secret` lets startup warn).
- ``SALESOPS_JWT_PUBLIC_KEY_FILE``: PEM public key (RS256/ES256) for verifying.
- ``SALESOPS_JWT_JWKS_FILE``: local JWKS JSON; a token's ``kid`` header selects the key.
- ``SALESOPS_JWT_PRIVATE_KEY_FILE``: PEM private key, or a JWK / JWKS JSON with private
  parts, for minting with RS256/ES256 (its public half also verifies when nothing else is set).
- ``SALESOPS_JWT_AUDIENCE``: required ``aud`` (default ``salesops``).
- ``SALESOPS_JWT_ISSUER``: required ``iss`` when set; minted tokens carry it.
- ``SALESOPS_JWT_LEEWAY_SECONDS``: clock-skew allowance for ``exp``/``nbf``/``iat`` (default 30).

Claims: ``sub`` (user id), ``tenant``, ``roles`` (list of lower-case role names), ``org``
(org-unit path such as ``east/team-a``, empty for admin/service), ``exp``, ``iat``, ``aud``,
``iss``, ``jti`` (ULID) and ``scope`` (space-separated, partner keys).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import (
    SECP256R1,
    EllipticCurvePrivateKey,
    EllipticCurvePublicKey,
)
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from jwt.exceptions import InvalidJTIError, InvalidSubjectError
from ulid import ULID

from kit.config import ConfigError

__all__ = [
    "DEFAULT_AUDIENCE",
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
]

DEV_SECRET: Final = "salesops-dev-secret-change-me-in-production"
"""HS256 secret used when ``SALESOPS_JWT_SECRET`` is unset. Public knowledge: dev only."""

DEFAULT_AUDIENCE: Final = "salesops"
DEFAULT_LEEWAY_SECONDS: Final = 30
SUPPORTED_ALGORITHMS: Final = frozenset({"HS256", "RS256", "ES256"})
KNOWN_ROLES: Final = frozenset({"rep", "supervisor", "director", "admin", "approver", "partner", "service"})
SERVICE_SUBJECT_PREFIX: Final = "service:"

MIN_HMAC_SECRET_BYTES: Final = 32
MIN_RSA_KEY_BITS: Final = 2048
MAX_TOKEN_CHARS: Final = 8192
"""Longer tokens are refused as malformed before any parsing (cheap DoS guard)."""

# Claims the minter sets itself; `extra` may not override them.
_RESERVED_CLAIMS: Final = frozenset(
    {"sub", "tenant", "roles", "org", "scope", "iat", "exp", "nbf", "aud", "iss", "jti"}
)

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
]

_VerifyKey: TypeAlias = bytes | RSAPublicKey | EllipticCurvePublicKey
_SignKey: TypeAlias = bytes | RSAPrivateKey | EllipticCurvePrivateKey


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


# --------------------------------------------------------------------------- principal


def _org_segments(path: str) -> tuple[str, ...] | None:
    """Split an org-unit path into segments; None if it is empty or not a plain path."""
    segments = tuple(part for part in path.strip().split("/") if part)
    if not segments or any(part in {".", ".."} for part in segments):
        return None
    return segments


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller."""

    user_id: str
    tenant: str
    roles: frozenset[str]
    org: str
    expires_at: datetime
    token_id: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    def has_role(self, *roles: str) -> bool:
        """True if the caller holds at least one of `roles`."""
        return any(role in self.roles for role in roles)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_service(self) -> bool:
        return "service" in self.roles

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def org_contains(self, path: str) -> bool:
        """True if `path` is the caller's org unit or below it, compared segment by segment.

        ``east`` contains ``east`` and ``east/team-a`` but not ``eastern``. An empty org
        (admin, service) contains nothing: callers grant those roles by role, not by org.
        """
        mine = _org_segments(self.org)
        theirs = _org_segments(path)
        if mine is None or theirs is None or len(theirs) < len(mine):
            return False
        return theirs[: len(mine)] == mine


# --------------------------------------------------------------------------- configuration


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _env_path(environ: Mapping[str, str], name: str) -> Path | None:
    value = _env(environ, name)
    return Path(value).expanduser() if value else None


@dataclass(frozen=True)
class AuthConfig:
    """How tokens are signed and checked. Build with `from_env()`; the defaults are dev mode."""

    alg: str = "HS256"
    secret: bytes | None = field(default=None, repr=False)
    public_key_file: Path | None = None
    jwks_file: Path | None = None
    private_key_file: Path | None = None
    audience: str = DEFAULT_AUDIENCE
    issuer: str | None = None
    leeway_seconds: int = DEFAULT_LEEWAY_SECONDS

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
        )

    @property
    def uses_dev_secret(self) -> bool:
        """True when tokens are signed/checked with the public `DEV_SECRET`: never in production."""
        return self.alg == "HS256" and self.secret == DEV_SECRET.encode()


# --------------------------------------------------------------------------- key loading


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AuthConfigError(f"{what} {path}: {exc.strerror or exc}") from exc


def _check_verify_key(alg: str, key: object, origin: str) -> _VerifyKey:
    """Return `key` as a public/secret key usable with `alg`, or raise AuthConfigError."""
    if isinstance(key, RSAPrivateKey | EllipticCurvePrivateKey):
        key = key.public_key()
    if alg == "HS256" and isinstance(key, bytes):
        if len(key) < MIN_HMAC_SECRET_BYTES:
            raise AuthConfigError(f"{origin}: HS256 secret shorter than {MIN_HMAC_SECRET_BYTES} bytes")
        return key
    if alg == "RS256" and isinstance(key, RSAPublicKey):
        if key.key_size < MIN_RSA_KEY_BITS:
            raise AuthConfigError(f"{origin}: RSA key of {key.key_size} bits, need {MIN_RSA_KEY_BITS}")
        return key
    if alg == "ES256" and isinstance(key, EllipticCurvePublicKey):
        if not isinstance(key.curve, SECP256R1):
            raise AuthConfigError(f"{origin}: ES256 needs a P-256 key, got {key.curve.name}")
        return key
    raise AuthConfigError(f"{origin}: {type(key).__name__} cannot be used with {alg}")


def _check_sign_key(alg: str, key: object, origin: str) -> _SignKey:
    if alg == "HS256" and isinstance(key, bytes):
        _check_verify_key(alg, key, origin)
        return key
    if alg == "RS256" and isinstance(key, RSAPrivateKey):
        _check_verify_key(alg, key, origin)
        return key
    if alg == "ES256" and isinstance(key, EllipticCurvePrivateKey):
        _check_verify_key(alg, key, origin)
        return key
    raise AuthConfigError(f"{origin}: {type(key).__name__} is not a {alg} signing key")


def _fingerprint(key: _VerifyKey | _SignKey) -> bytes:
    """Comparable identity of a key's public (or shared) half."""
    if isinstance(key, bytes):
        return b"oct:" + key
    public = key.public_key() if isinstance(key, RSAPrivateKey | EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _jwk_entries(data: bytes, origin: str) -> list[dict[str, Any]]:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise AuthConfigError(f"{origin}: not valid JSON ({exc})") from exc
    if isinstance(document, dict) and isinstance(document.get("keys"), list):
        return [entry for entry in document["keys"] if isinstance(entry, dict)]
    if isinstance(document, dict) and "kty" in document:
        return [document]
    raise AuthConfigError(f"{origin}: expected a JWK or a JWKS object with a 'keys' list")


def _jwk_key(entry: dict[str, Any], alg: str) -> object | None:
    """The cryptography key (or HMAC bytes) of a JWK entry if it is meant for `alg`, else None."""
    if entry.get("use", "sig") != "sig" or entry.get("alg", alg) != alg:
        return None
    try:
        key: object = jwt.PyJWK(entry, algorithm=alg).key
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    return key


def _load_jwks(path: Path, alg: str) -> tuple[dict[str, _VerifyKey], list[_VerifyKey]]:
    """Keys for `alg` from a JWKS file: by kid, and those without one."""
    origin = f"SALESOPS_JWT_JWKS_FILE {path}"
    by_kid: dict[str, _VerifyKey] = {}
    anonymous: list[_VerifyKey] = []
    for entry in _jwk_entries(_read(path, "SALESOPS_JWT_JWKS_FILE"), origin):
        raw = _jwk_key(entry, alg)
        if raw is None:
            continue
        kid = entry.get("kid")
        key = _check_verify_key(alg, raw, f"{origin} kid={kid!r}")
        if kid is None:
            anonymous.append(key)
        elif not isinstance(kid, str) or not kid:
            raise AuthConfigError(f"{origin}: 'kid' must be a non-empty string")
        elif kid in by_kid:
            raise AuthConfigError(f"{origin}: duplicate kid {kid!r}")
        else:
            by_kid[kid] = key
    if not by_kid and not anonymous:
        raise AuthConfigError(f"{origin}: no signing key usable with {alg}")
    return by_kid, anonymous


def _load_public_pem(path: Path, alg: str) -> _VerifyKey:
    origin = f"SALESOPS_JWT_PUBLIC_KEY_FILE {path}"
    try:
        key = serialization.load_pem_public_key(_read(path, "SALESOPS_JWT_PUBLIC_KEY_FILE"))
    except ValueError as exc:
        raise AuthConfigError(f"{origin}: not a PEM public key ({exc})") from exc
    return _check_verify_key(alg, key, origin)


def _load_private(path: Path, alg: str) -> tuple[_SignKey, str | None]:
    """A signing key from a PEM file or a JWK/JWKS JSON file, with the JWK's kid if any."""
    origin = f"SALESOPS_JWT_PRIVATE_KEY_FILE {path}"
    data = _read(path, "SALESOPS_JWT_PRIVATE_KEY_FILE")
    if data.lstrip().startswith(b"{"):
        for entry in _jwk_entries(data, origin):
            if "d" not in entry and "k" not in entry:
                continue
            raw = _jwk_key(entry, alg)
            if raw is not None:
                kid = entry.get("kid")
                return _check_sign_key(alg, raw, origin), kid if isinstance(kid, str) and kid else None
        raise AuthConfigError(f"{origin}: no private {alg} key in the JWK file")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise AuthConfigError(f"{origin}: not an unencrypted PEM private key ({exc})") from exc
    return _check_sign_key(alg, key, origin), None


# --------------------------------------------------------------------------- verification


def _required_str(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if value is None or value == "":
        raise AuthError("missing_claim", name)
    if not isinstance(value, str):
        raise AuthError("invalid_claim", f"{name} must be a string")
    return value


def _optional_str(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise AuthError("invalid_claim", f"{name} must be a string")
    return value


class TokenVerifier:
    """Checks bearer tokens against one configured algorithm and its keys (loaded once)."""

    def __init__(self, config: AuthConfig) -> None:
        self._config = config
        self._alg = config.alg
        self._keys_by_kid: dict[str, _VerifyKey] = {}
        self._has_jwks = config.jwks_file is not None
        default: _VerifyKey | None = None
        if config.jwks_file is not None:
            self._keys_by_kid, anonymous = _load_jwks(config.jwks_file, config.alg)
            if len(anonymous) == 1:
                default = anonymous[0]
            elif not anonymous and len(self._keys_by_kid) == 1:
                default = next(iter(self._keys_by_kid.values()))
        if config.alg == "HS256":
            if config.secret is not None:
                default = config.secret
        elif config.public_key_file is not None:
            default = _load_public_pem(config.public_key_file, config.alg)
        elif config.private_key_file is not None and not self._has_jwks:
            private, kid = _load_private(config.private_key_file, config.alg)
            default = _check_verify_key(config.alg, private, "SALESOPS_JWT_PRIVATE_KEY_FILE")
            if kid is not None:
                self._keys_by_kid[kid] = default
        if default is None and not self._keys_by_kid:
            raise AuthConfigError(f"no key to verify {config.alg} tokens")
        self._default_key = default
        self._jwt = jwt.PyJWT(options={"enforce_minimum_key_length": True})
        self._require = ["exp", "sub", "aud"] + (["iss"] if config.issuer else [])

    @property
    def config(self) -> AuthConfig:
        return self._config

    def _select_key(self, header: Mapping[str, Any]) -> _VerifyKey:
        kid = header.get("kid")
        if kid is not None:
            key = self._keys_by_kid.get(kid) if isinstance(kid, str) else None
            if key is not None:
                return key
            if self._has_jwks:
                raise AuthError("unknown_key", "kid not in the configured key set")
        if self._default_key is None:
            raise AuthError("unknown_key", "token has no kid and several keys are configured")
        return self._default_key

    def verify_claims(self, token: str | None) -> dict[str, Any]:
        """Verify `token` and return its claims; raises `AuthError` on any problem."""
        if token is None or not token.strip():
            raise AuthError("missing")
        token = token.strip()
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthError("malformed", "token too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError("malformed", "unreadable token header") from exc
        alg = header.get("alg")
        if alg != self._alg:
            raise AuthError("bad_algorithm", f"alg {str(alg)[:20]!r} is not accepted")
        if "crit" in header or "b64" in header:
            raise AuthError("malformed", "unsupported header extension")
        key = self._select_key(header)
        try:
            claims = self._jwt.decode(
                token,
                key,
                algorithms=[self._alg],
                audience=self._config.audience,
                issuer=self._config.issuer,
                leeway=self._config.leeway_seconds,
                options={"require": self._require},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("expired") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthError("bad_signature") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("wrong_audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError("wrong_issuer") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError("missing_claim", exc.claim) from exc
        except jwt.InvalidAlgorithmError as exc:
            raise AuthError("bad_algorithm") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthError("not_yet_valid", str(exc)) from exc
        except (jwt.InvalidIssuedAtError, InvalidSubjectError, InvalidJTIError) as exc:
            raise AuthError("invalid_claim", str(exc)) from exc
        except jwt.InvalidKeyError as exc:
            raise AuthError("unknown_key", str(exc)) from exc
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise AuthError("malformed", str(exc)[:200]) from exc
        self._check_claims(claims)
        return claims

    @staticmethod
    def _check_claims(claims: Mapping[str, Any]) -> None:
        _required_str(claims, "sub")
        _required_str(claims, "tenant")
        roles = claims.get("roles")
        if roles is None:
            raise AuthError("missing_claim", "roles")
        if not isinstance(roles, list) or not all(isinstance(role, str) and role for role in roles):
            raise AuthError("invalid_claim", "roles must be a list of strings")
        _optional_str(claims, "org")
        _optional_str(claims, "scope")

    def verify(self, token: str | None) -> Principal:
        """Verify `token` (the bare JWT) and return the caller; raises `AuthError`."""
        claims = self.verify_claims(token)
        scope = claims.get("scope") or ""
        return Principal(
            user_id=claims["sub"],
            tenant=claims["tenant"],
            roles=frozenset(claims["roles"]),
            org=claims.get("org") or "",
            expires_at=datetime.fromtimestamp(int(claims["exp"]), tz=UTC),
            token_id=claims.get("jti"),
            scopes=frozenset(scope.split()),
        )

    def verify_bearer(self, header_value: str | None) -> Principal:
        """Verify an ``authorization`` value of the form ``Bearer <token>`` (scheme case-insensitive)."""
        if header_value is None or not header_value.strip():
            raise AuthError("missing")
        scheme, _, token = header_value.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise AuthError("malformed", "authorization scheme must be Bearer")
        if not token.strip():
            raise AuthError("missing")
        return self.verify(token)


# --------------------------------------------------------------------------- minting


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TokenMinter:
    """Signs tokens with the configured algorithm and key (loaded once)."""

    def __init__(self, config: AuthConfig, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._config = config
        self._clock = clock
        kid: str | None = None
        key: _SignKey
        if config.alg == "HS256":
            if config.secret is None:
                raise AuthConfigError("minting HS256 tokens needs SALESOPS_JWT_SECRET")
            key = config.secret
        else:
            if config.private_key_file is None:
                raise AuthConfigError(f"minting {config.alg} tokens needs SALESOPS_JWT_PRIVATE_KEY_FILE")
            key, kid = _load_private(config.private_key_file, config.alg)
        if kid is None and config.jwks_file is not None:
            # Name the key as the verifiers' key set does, so they can select it by kid.
            by_kid, _ = _load_jwks(config.jwks_file, config.alg)
            mine = _fingerprint(key)
            kid = next((k for k, v in by_kid.items() if _fingerprint(v) == mine), None)
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
        ttl: timedelta = timedelta(hours=12),
        scopes: Iterable[str] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Return a signed token. Raises ValueError for unusable arguments."""
        if not sub or not tenant:
            raise ValueError("sub and tenant must not be empty")
        role_list = sorted(set(roles))
        unknown = [role for role in role_list if role not in KNOWN_ROLES]
        if unknown:
            raise ValueError(f"unknown roles {unknown}; known: {', '.join(sorted(KNOWN_ROLES))}")
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        if org and _org_segments(org) is None:
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

    def mint_service_token(self, service_name: str, tenant: str, ttl: timedelta = timedelta(hours=1)) -> str:
        """A token for service-to-service calls: sub ``service:<name>``, role ``service``."""
        if not service_name:
            raise ValueError("service_name must not be empty")
        return self.mint(f"{SERVICE_SUBJECT_PREFIX}{service_name}", tenant, ["service"], ttl=ttl)
