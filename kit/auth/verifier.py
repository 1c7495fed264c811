"""Token verification: one configured algorithm, keys loaded once, every claim checked."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import jwt
from jwt.exceptions import InvalidJTIError, InvalidSubjectError

from kit.auth.config import KNOWN_ROLES, MAX_TOKEN_CHARS, AuthConfig, AuthConfigError, AuthError
from kit.auth.keys import VerifyKey, check_verify_key, load_jwks, load_private, load_public_pem
from kit.auth.principal import Principal


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
        self._keys_by_kid: dict[str, VerifyKey] = {}
        self._has_jwks = config.jwks_file is not None
        default: VerifyKey | None = None
        if config.jwks_file is not None:
            self._keys_by_kid, anonymous = load_jwks(config.jwks_file, config.alg)
            if len(anonymous) == 1:
                default = anonymous[0]
            elif not anonymous and len(self._keys_by_kid) == 1:
                default = next(iter(self._keys_by_kid.values()))
        if config.alg == "HS256":
            if config.secret is not None:
                default = config.secret
        elif config.public_key_file is not None:
            default = load_public_pem(config.public_key_file, config.alg)
        elif config.private_key_file is not None and not self._has_jwks:
            private, kid = load_private(config.private_key_file, config.alg)
            default = check_verify_key(config.alg, private, "SALESOPS_JWT_PRIVATE_KEY_FILE")
            if kid is not None:
                self._keys_by_kid[kid] = default
        if default is None and not self._keys_by_kid:
            raise AuthConfigError(f"no key to verify {config.alg} tokens")
        self._default_key = default
        self._jwt = jwt.PyJWT(options={"enforce_minimum_key_length": True})
        self._require = ["exp", "sub", "aud"] + (["iss"] if config.issuer else [])
        self._max_lifetime = config.max_lifetime.total_seconds()

    @property
    def config(self) -> AuthConfig:
        return self._config

    def _select_key(self, header: Mapping[str, Any]) -> VerifyKey:
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
        self._check_lifetime(claims)
        self._check_claims(claims)
        return claims

    def _check_lifetime(self, claims: Mapping[str, Any]) -> None:
        """A stolen token is useful for its lifetime: refuse lifetimes beyond the configured maximum.

        Measured from ``iat`` when the token has one, else from now (plus the clock leeway).
        PyJWT has already checked that ``exp`` and ``iat`` are numbers.
        """
        exp = float(claims["exp"])
        iat = claims.get("iat")
        if iat is not None:
            lifetime, allowed = exp - float(iat), self._max_lifetime
        else:
            lifetime, allowed = exp - time.time(), self._max_lifetime + self._config.leeway_seconds
        if lifetime > allowed:
            raise AuthError(
                "lifetime_too_long",
                f"exp is {lifetime:.0f}s after {'iat' if iat is not None else 'now'}; at most {allowed:.0f}s",
            )

    @staticmethod
    def _check_claims(claims: Mapping[str, Any]) -> None:
        _required_str(claims, "sub")
        _required_str(claims, "tenant")
        roles = claims.get("roles")
        if roles is None:
            raise AuthError("missing_claim", "roles")
        if not isinstance(roles, list) or not all(isinstance(role, str) and role for role in roles):
            raise AuthError("invalid_claim", "roles must be a list of strings")
        unknown = sorted(set(roles) - KNOWN_ROLES)
        if unknown:
            raise AuthError("unknown_role", f"roles not in the whitelist: {', '.join(unknown)[:100]}")
        _optional_str(claims, "org")
        _optional_str(claims, "scope")
        _optional_str(claims, "pkid")
        rpm = claims.get("rpm")
        if rpm is not None and (isinstance(rpm, bool) or not isinstance(rpm, int) or rpm < 0):
            raise AuthError("invalid_claim", "rpm must be a non-negative integer")

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
            partner_key_id=claims.get("pkid") or None,
            rate_limit_per_minute=int(claims.get("rpm") or 0),
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


def require_production_ready(environ: Mapping[str, str] | None = None) -> AuthConfig:
    """The startup gate of every process that checks tokens (each service's runtime, the gateway).

    Reads the auth settings and loads the keys as serving would, so a process refuses to
    start (`AuthConfigError` naming the problem) rather than warn: an unusable
    ``SALESOPS_ENV``, unusable settings or key files, and in production the public dev
    secret, set or used for want of any other key.
    """
    config = AuthConfig.from_env(environ)
    TokenVerifier(config)
    return config
