"""Key loading for JWT signing and verification: PEM files, JWK and JWKS documents.

Every key is checked for its algorithm and strength when loaded, so verification and
minting never meet an unusable key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeAlias

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import (
    SECP256R1,
    EllipticCurvePrivateKey,
    EllipticCurvePublicKey,
)
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from kit.auth.config import MIN_HMAC_SECRET_BYTES, MIN_RSA_KEY_BITS, AuthConfigError

VerifyKey: TypeAlias = bytes | RSAPublicKey | EllipticCurvePublicKey
SignKey: TypeAlias = bytes | RSAPrivateKey | EllipticCurvePrivateKey


def read_key_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AuthConfigError(f"{what} {path}: {exc.strerror or exc}") from exc


def check_verify_key(alg: str, key: object, origin: str) -> VerifyKey:
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


def check_sign_key(alg: str, key: object, origin: str) -> SignKey:
    if alg == "HS256" and isinstance(key, bytes):
        check_verify_key(alg, key, origin)
        return key
    if alg == "RS256" and isinstance(key, RSAPrivateKey):
        check_verify_key(alg, key, origin)
        return key
    if alg == "ES256" and isinstance(key, EllipticCurvePrivateKey):
        check_verify_key(alg, key, origin)
        return key
    raise AuthConfigError(f"{origin}: {type(key).__name__} is not a {alg} signing key")


def fingerprint(key: VerifyKey | SignKey) -> bytes:
    """Comparable identity of a key's public (or shared) half."""
    if isinstance(key, bytes):
        return b"oct:" + key
    public = key.public_key() if isinstance(key, RSAPrivateKey | EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def jwk_entries(data: bytes, origin: str) -> list[dict[str, Any]]:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise AuthConfigError(f"{origin}: not valid JSON ({exc})") from exc
    if isinstance(document, dict) and isinstance(document.get("keys"), list):
        return [entry for entry in document["keys"] if isinstance(entry, dict)]
    if isinstance(document, dict) and "kty" in document:
        return [document]
    raise AuthConfigError(f"{origin}: expected a JWK or a JWKS object with a 'keys' list")


def jwk_key(entry: dict[str, Any], alg: str) -> object | None:
    """The cryptography key (or HMAC bytes) of a JWK entry if it is meant for `alg`, else None."""
    if entry.get("use", "sig") != "sig" or entry.get("alg", alg) != alg:
        return None
    try:
        key: object = jwt.PyJWK(entry, algorithm=alg).key
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    return key


def load_jwks(path: Path, alg: str) -> tuple[dict[str, VerifyKey], list[VerifyKey]]:
    """Keys for `alg` from a JWKS file: by kid, and those without one."""
    origin = f"SALESOPS_JWT_JWKS_FILE {path}"
    by_kid: dict[str, VerifyKey] = {}
    anonymous: list[VerifyKey] = []
    for entry in jwk_entries(read_key_file(path, "SALESOPS_JWT_JWKS_FILE"), origin):
        raw = jwk_key(entry, alg)
        if raw is None:
            continue
        kid = entry.get("kid")
        key = check_verify_key(alg, raw, f"{origin} kid={kid!r}")
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


def load_public_pem(path: Path, alg: str) -> VerifyKey:
    origin = f"SALESOPS_JWT_PUBLIC_KEY_FILE {path}"
    try:
        key = serialization.load_pem_public_key(read_key_file(path, "SALESOPS_JWT_PUBLIC_KEY_FILE"))
    except ValueError as exc:
        raise AuthConfigError(f"{origin}: not a PEM public key ({exc})") from exc
    return check_verify_key(alg, key, origin)


def load_private(path: Path, alg: str) -> tuple[SignKey, str | None]:
    """A signing key from a PEM file or a JWK/JWKS JSON file, with the JWK's kid if any."""
    origin = f"SALESOPS_JWT_PRIVATE_KEY_FILE {path}"
    data = read_key_file(path, "SALESOPS_JWT_PRIVATE_KEY_FILE")
    if data.lstrip().startswith(b"{"):
        for entry in jwk_entries(data, origin):
            if "d" not in entry and "k" not in entry:
                continue
            raw = jwk_key(entry, alg)
            if raw is not None:
                kid = entry.get("kid")
                return check_sign_key(alg, raw, origin), kid if isinstance(kid, str) and kid else None
        raise AuthConfigError(f"{origin}: no private {alg} key in the JWK file")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise AuthConfigError(f"{origin}: not an unencrypted PEM private key ({exc})") from exc
    return check_sign_key(alg, key, origin), None
