"""kit.auth: token verification (every refusal case), minting, key handling, and the kit.tokens CLI."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from kit.auth import (
    DEV_SECRET,
    KNOWN_ROLES,
    AuthConfig,
    AuthConfigError,
    AuthError,
    Principal,
    TokenMinter,
    TokenVerifier,
)

REPO = Path(__file__).resolve().parents[2]
SECRET = b"unit-test-secret-that-is-long-enough-0123456789"
OTHER_SECRET = b"another-unit-test-secret-also-long-enough-987654"


# --------------------------------------------------------------------------- helpers


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


Signer = Callable[[bytes], bytes]


def craft(header: dict[str, Any], claims: dict[str, Any], sign: Signer | None = None) -> str:
    """Build a JWT by hand, so tests can produce tokens no library would."""
    signing_input = f"{segment(header)}.{segment(claims)}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64url(signature)}"


def hs256(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda message: hmac.new(secret, message, hashlib.sha256).digest()


def good_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "rep-a1",
        "tenant": "demo",
        "roles": ["rep"],
        "org": "east/team-a",
        "aud": "salesops",
        "iat": now,
        "exp": now + 600,
        "jti": "01J0000000000000000000000",
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def hs_config(**overrides: Any) -> AuthConfig:
    return AuthConfig(alg="HS256", secret=SECRET, **overrides)


def refused(verifier: TokenVerifier, token: str | None) -> str:
    with pytest.raises(AuthError) as caught:
        verifier.verify(token)
    return caught.value.reason


def write_pem_private(path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_pem_public(path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(public_pem(key))
    return path


def rsa_jwk(key: rsa.RSAPrivateKey, kid: str, *, private: bool = False) -> dict[str, Any]:
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key if private else key.public_key(), as_dict=True)
    jwk.update(kid=kid, alg="RS256", use="sig")
    return jwk


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_key2() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier(hs_config())


@pytest.fixture
def minter() -> TokenMinter:
    return TokenMinter(hs_config())


@pytest.fixture
def rs_config(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> AuthConfig:
    return AuthConfig(
        alg="RS256",
        public_key_file=write_pem_public(tmp_path / "pub.pem", rsa_key),
        private_key_file=write_pem_private(tmp_path / "priv.pem", rsa_key),
    )


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("token", [None, "", "   "])
def test_missing_token_is_refused(verifier: TokenVerifier, token: str | None) -> None:
    assert refused(verifier, token) == "missing"


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b", "a.b.c", "!!!.???.***", "eyJhbGciOiJIUzI1NiJ9", "x" * 10_000],
)
def test_garbage_is_refused_as_malformed(verifier: TokenVerifier, token: str) -> None:
    assert refused(verifier, token) == "malformed"


def test_payload_that_is_not_json_is_malformed(verifier: TokenVerifier) -> None:
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT'})}.{b64url(b'not json')}"
    token = f"{signing_input}.{b64url(hs256(SECRET)(signing_input.encode()))}"
    assert refused(verifier, token) == "malformed"


def test_expired_token_is_refused(verifier: TokenVerifier) -> None:
    now = int(time.time())
    token = craft({"alg": "HS256"}, good_claims(iat=now - 7200, exp=now - 3600), hs256(SECRET))
    assert refused(verifier, token) == "expired"


def test_expiry_within_leeway_is_accepted(verifier: TokenVerifier) -> None:
    token = craft({"alg": "HS256"}, good_claims(exp=int(time.time()) - 5), hs256(SECRET))
    assert verifier.verify(token).user_id == "rep-a1"


def test_token_from_the_future_is_refused(verifier: TokenVerifier) -> None:
    later = int(time.time()) + 3600
    token = craft({"alg": "HS256"}, good_claims(nbf=later, iat=later, exp=later + 600), hs256(SECRET))
    assert refused(verifier, token) == "not_yet_valid"


def test_wrong_secret_is_bad_signature(verifier: TokenVerifier) -> None:
    token = craft({"alg": "HS256", "typ": "JWT"}, good_claims(), hs256(OTHER_SECRET))
    assert refused(verifier, token) == "bad_signature"


def test_tampered_payload_is_bad_signature(verifier: TokenVerifier, minter: TokenMinter) -> None:
    header, _, signature = minter.mint("rep-a1", "demo", ["rep"]).split(".")
    forged = segment(good_claims(roles=["admin"]))
    assert refused(verifier, f"{header}.{forged}.{signature}") == "bad_signature"


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_alg_none_is_refused(verifier: TokenVerifier, alg: str) -> None:
    token = craft({"alg": alg, "typ": "JWT"}, good_claims())
    assert refused(verifier, token) == "bad_algorithm"
    assert refused(verifier, token.rstrip(".") + ".") == "bad_algorithm"


def test_missing_alg_header_is_refused(verifier: TokenVerifier) -> None:
    token = craft({"typ": "JWT"}, good_claims(), hs256(SECRET))
    assert refused(verifier, token) == "bad_algorithm"


def test_other_algorithm_than_configured_is_refused(verifier: TokenVerifier) -> None:
    token = jwt.encode(good_claims(), SECRET * 2, algorithm="HS512")
    assert refused(verifier, token) == "bad_algorithm"


def test_key_confusion_hs256_signed_with_rsa_public_pem_is_refused(
    rs_config: AuthConfig, rsa_key: rsa.RSAPrivateKey
) -> None:
    """The classic attack: HMAC-sign with the (public) RSA key bytes and hope the verifier uses them."""
    rs_verifier = TokenVerifier(rs_config)
    pem = public_pem(rsa_key)
    for header in ({"alg": "HS256", "typ": "JWT"}, {"alg": "HS256", "typ": "JWT", "kid": "k1"}):
        token = craft(header, good_claims(), hs256(pem))
        assert refused(rs_verifier, token) == "bad_algorithm"
    # The same token shape signed properly with RS256 passes, so the refusal is about alg alone.
    assert rs_verifier.verify(TokenMinter(rs_config).mint("rep-a1", "demo", ["rep"])).tenant == "demo"


def test_wrong_audience_is_refused(verifier: TokenVerifier) -> None:
    token = craft({"alg": "HS256"}, good_claims(aud="someone-else"), hs256(SECRET))
    assert refused(verifier, token) == "wrong_audience"
    token = craft({"alg": "HS256"}, good_claims(aud=["a", "b"]), hs256(SECRET))
    assert refused(verifier, token) == "wrong_audience"


def test_audience_list_containing_ours_is_accepted(verifier: TokenVerifier) -> None:
    token = craft({"alg": "HS256"}, good_claims(aud=["crm", "salesops"]), hs256(SECRET))
    assert verifier.verify(token).tenant == "demo"


def test_wrong_issuer_is_refused() -> None:
    verifier = TokenVerifier(hs_config(issuer="https://id.salesops.example"))
    token = craft({"alg": "HS256"}, good_claims(iss="https://evil.example"), hs256(SECRET))
    assert refused(verifier, token) == "wrong_issuer"
    assert refused(verifier, craft({"alg": "HS256"}, good_claims(), hs256(SECRET))) == "missing_claim"
    token = craft({"alg": "HS256"}, good_claims(iss="https://id.salesops.example"), hs256(SECRET))
    assert verifier.verify(token).user_id == "rep-a1"


@pytest.mark.parametrize("claim", ["sub", "tenant", "exp", "roles", "aud"])
def test_missing_required_claim_is_refused(verifier: TokenVerifier, claim: str) -> None:
    claims = good_claims()
    del claims[claim]
    with pytest.raises(AuthError) as caught:
        verifier.verify(craft({"alg": "HS256"}, claims, hs256(SECRET)))
    assert caught.value.reason == "missing_claim"
    assert caught.value.detail == claim


@pytest.mark.parametrize("claim", ["sub", "tenant"])
def test_empty_required_claim_is_refused(verifier: TokenVerifier, claim: str) -> None:
    token = craft({"alg": "HS256"}, good_claims(**{claim: ""}), hs256(SECRET))
    assert refused(verifier, token) == "missing_claim"


@pytest.mark.parametrize(
    "overrides",
    [
        {"roles": "rep"},
        {"roles": ["rep", 7]},
        {"roles": {"rep": True}},
        {"roles": [""]},
        {"tenant": 42},
        {"org": ["east"]},
        {"scope": ["leads:read"]},
        {"sub": 12},
    ],
)
def test_claim_of_wrong_type_is_refused(verifier: TokenVerifier, overrides: dict[str, Any]) -> None:
    token = craft({"alg": "HS256"}, good_claims(**overrides), hs256(SECRET))
    assert refused(verifier, token) == "invalid_claim"


def test_exp_that_is_not_a_number_is_refused(verifier: TokenVerifier) -> None:
    token = craft({"alg": "HS256"}, good_claims(exp="tomorrow"), hs256(SECRET))
    assert refused(verifier, token) == "malformed"


def test_unknown_kid_is_refused(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [rsa_jwk(rsa_key, "k1")]}))
    verifier = TokenVerifier(AuthConfig(alg="RS256", jwks_file=jwks))
    token = jwt.encode(good_claims(), rsa_key, algorithm="RS256", headers={"kid": "k9"})
    assert refused(verifier, token) == "unknown_key"


def test_crit_header_is_refused(verifier: TokenVerifier) -> None:
    token = craft({"alg": "HS256", "crit": ["exp"], "exp": 1}, good_claims(), hs256(SECRET))
    assert refused(verifier, token) == "malformed"


def test_auth_error_carries_reason_and_never_the_token(verifier: TokenVerifier) -> None:
    token = craft({"alg": "HS256"}, good_claims(), hs256(OTHER_SECRET))
    with pytest.raises(AuthError) as caught:
        verifier.verify(token)
    assert caught.value.reason == "bad_signature"
    assert token not in str(caught.value)
    assert token.split(".")[2] not in repr(caught.value)


# --------------------------------------------------------------------------- round trips


def test_hs256_round_trip(verifier: TokenVerifier, minter: TokenMinter) -> None:
    before = datetime.now(UTC)
    token = minter.mint(
        "rep-a1", "demo", ["rep", "approver"], org="east/team-a", ttl=timedelta(hours=2), extra={"name": "A"}
    )
    principal = verifier.verify(token)
    assert principal.user_id == "rep-a1"
    assert principal.tenant == "demo"
    assert principal.roles == frozenset({"rep", "approver"})
    assert principal.org == "east/team-a"
    assert principal.scopes == frozenset()
    assert principal.token_id is not None and len(principal.token_id) == 26  # a ULID
    expected = before + timedelta(hours=2)
    assert abs((principal.expires_at - expected).total_seconds()) < 5
    assert principal.expires_at.tzinfo is not None
    claims = verifier.verify_claims(token)
    assert claims["aud"] == "salesops"
    assert claims["name"] == "A"
    assert claims["exp"] - claims["iat"] == 7200
    assert "iss" not in claims
    assert jwt.get_unverified_header(token).get("kid") is None


def test_each_token_gets_a_fresh_jti(minter: TokenMinter, verifier: TokenVerifier) -> None:
    ids = {verifier.verify(minter.mint("rep-a1", "demo", ["rep"])).token_id for _ in range(5)}
    assert len(ids) == 5


def test_minter_sets_issuer_and_scopes() -> None:
    config = hs_config(issuer="https://id.salesops.example")
    token = TokenMinter(config).mint("partner-7", "demo", ["partner"], scopes=["leads:write", "leads:read"])
    principal = TokenVerifier(config).verify(token)
    assert principal.scopes == frozenset({"leads:read", "leads:write"})
    assert principal.has_scope("leads:read") and not principal.has_scope("leads:delete")
    assert TokenVerifier(config).verify_claims(token)["iss"] == "https://id.salesops.example"


def test_expired_minted_token_is_refused(verifier: TokenVerifier) -> None:
    past = TokenMinter(hs_config(), clock=lambda: datetime.now(UTC) - timedelta(days=1))
    assert refused(verifier, past.mint("rep-a1", "demo", ["rep"], ttl=timedelta(hours=1))) == "expired"


def test_service_token(minter: TokenMinter, verifier: TokenVerifier) -> None:
    principal = verifier.verify(minter.mint_service_token("leads", "demo"))
    assert principal.user_id == "service:leads"
    assert principal.roles == frozenset({"service"})
    assert principal.is_service and not principal.is_admin
    assert principal.org == ""
    assert principal.expires_at - datetime.now(UTC) <= timedelta(hours=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"roles": ["Rep"]}, "unknown roles"),
        ({"roles": ["superuser"]}, "unknown roles"),
        ({"ttl": timedelta(0)}, "ttl"),
        ({"extra": {"tenant": "other"}}, "extra"),
        ({"scopes": ["two words"]}, "scopes"),
        ({"org": "east/../west"}, "org"),
        ({"sub": ""}, "sub"),
    ],
)
def test_minter_rejects_bad_arguments(minter: TokenMinter, kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"sub": "rep-a1", "tenant": "demo", "roles": ["rep"], **kwargs}
    with pytest.raises(ValueError, match=message):
        minter.mint(**args)


def test_verify_bearer(verifier: TokenVerifier, minter: TokenMinter) -> None:
    token = minter.mint("rep-a1", "demo", ["rep"])
    for value in (f"Bearer {token}", f"bearer {token}", f"BEARER  {token} "):
        assert verifier.verify_bearer(value).user_id == "rep-a1"
    for empty in (None, "", "Bearer", "Bearer   "):
        with pytest.raises(AuthError) as caught:
            verifier.verify_bearer(empty)
        assert caught.value.reason == "missing"
    for value in (token, f"Basic {token}", f"Token {token}"):
        with pytest.raises(AuthError) as caught:
            verifier.verify_bearer(value)
        assert caught.value.reason == "malformed"


def test_rs256_round_trip(rs_config: AuthConfig) -> None:
    token = TokenMinter(rs_config).mint("dir-1", "demo", ["director"], org="east")
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    principal = TokenVerifier(rs_config).verify(token)
    assert (principal.user_id, principal.roles, principal.org) == ("dir-1", frozenset({"director"}), "east")


def test_rs256_verifier_refuses_token_from_another_key(
    rs_config: AuthConfig, rsa_key2: rsa.RSAPrivateKey
) -> None:
    token = jwt.encode(good_claims(), rsa_key2, algorithm="RS256")
    assert refused(TokenVerifier(rs_config), token) == "bad_signature"


def test_rs256_verifier_from_private_key_only(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    config = AuthConfig(alg="RS256", private_key_file=write_pem_private(tmp_path / "priv.pem", rsa_key))
    token = TokenMinter(config).mint("rep-a1", "demo", ["rep"])
    assert TokenVerifier(config).verify(token).user_id == "rep-a1"


def test_es256_round_trip(tmp_path: Path, ec_key: ec.EllipticCurvePrivateKey) -> None:
    config = AuthConfig(
        alg="ES256",
        public_key_file=write_pem_public(tmp_path / "ec-pub.pem", ec_key),
        private_key_file=write_pem_private(tmp_path / "ec-priv.pem", ec_key),
    )
    token = TokenMinter(config).mint("sup-1", "demo", ["supervisor"], org="east/team-a")
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    principal = TokenVerifier(config).verify(token)
    assert principal.has_role("supervisor") and principal.org_contains("east/team-a/sub")
    # An RS256 token (or any other alg) is refused by the ES256 verifier.
    other = jwt.encode(good_claims(), SECRET, algorithm="HS256")
    assert refused(TokenVerifier(config), other) == "bad_algorithm"


def test_jwks_with_two_keys_selects_by_kid(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, rsa_key2: rsa.RSAPrivateKey
) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [rsa_jwk(rsa_key, "2024-a"), rsa_jwk(rsa_key2, "2025-b")]}))
    verifier = TokenVerifier(AuthConfig(alg="RS256", jwks_file=jwks))

    for key, kid in ((rsa_key, "2024-a"), (rsa_key2, "2025-b")):
        config = AuthConfig(
            alg="RS256", jwks_file=jwks, private_key_file=write_pem_private(tmp_path / f"{kid}.pem", key)
        )
        minter = TokenMinter(config)
        assert minter.key_id == kid  # found by matching the private key to the key set
        token = minter.mint("rep-a1", "demo", ["rep"])
        assert jwt.get_unverified_header(token)["kid"] == kid
        assert verifier.verify(token).user_id == "rep-a1"

    # Signed by key a but labelled b: selection is by kid, so the signature fails.
    mislabelled = jwt.encode(good_claims(), rsa_key, algorithm="RS256", headers={"kid": "2025-b"})
    assert refused(verifier, mislabelled) == "bad_signature"
    # With two keys, a token without kid cannot be placed.
    assert refused(verifier, jwt.encode(good_claims(), rsa_key, algorithm="RS256")) == "unknown_key"


def test_private_jwk_file_gives_kid(tmp_path: Path, ec_key: ec.EllipticCurvePrivateKey) -> None:
    private = ECAlgorithm.to_jwk(ec_key, as_dict=True)
    private.update(kid="ec-1", alg="ES256")
    public = ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True)
    public.update(kid="ec-1")
    (tmp_path / "priv.json").write_text(json.dumps(private))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [public]}))
    token = TokenMinter(AuthConfig(alg="ES256", private_key_file=tmp_path / "priv.json")).mint(
        "rep-a1", "demo", ["rep"]
    )
    assert jwt.get_unverified_header(token)["kid"] == "ec-1"
    verifier = TokenVerifier(AuthConfig(alg="ES256", jwks_file=tmp_path / "jwks.json"))
    assert verifier.verify(token).user_id == "rep-a1"


def test_jwks_ignores_keys_for_other_algorithms(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    ec_jwk = ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True)
    ec_jwk.update(kid="ec")
    encryption = rsa_jwk(rsa_key, "enc")
    encryption["use"] = "enc"
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [ec_jwk, encryption, rsa_jwk(rsa_key, "rs")]}))
    verifier = TokenVerifier(AuthConfig(alg="RS256", jwks_file=jwks))
    for kid in ("ec", "enc"):
        token = jwt.encode(good_claims(), rsa_key, algorithm="RS256", headers={"kid": kid})
        assert refused(verifier, token) == "unknown_key"
    token = jwt.encode(good_claims(), rsa_key, algorithm="RS256", headers={"kid": "rs"})
    assert verifier.verify(token).user_id == "rep-a1"


# --------------------------------------------------------------------------- lifetime and roles


def test_lifetime_up_to_the_maximum_is_accepted(verifier: TokenVerifier) -> None:
    now = int(time.time())
    token = craft({"alg": "HS256", "typ": "JWT"}, good_claims(iat=now, exp=now + 12 * 3600), hs256(SECRET))
    assert verifier.verify(token).user_id == "rep-a1"


@pytest.mark.parametrize(
    ("iat_offset", "exp_offset"),
    [
        (0, 12 * 3600 + 1),  # one second over, measured from iat
        (-3600, 12 * 3600 - 60),  # issued an hour ago: 13 h in all, even though 12 h are left
        (0, 365 * 86400),
    ],
)
def test_lifetime_beyond_the_maximum_is_refused(
    verifier: TokenVerifier, iat_offset: int, exp_offset: int
) -> None:
    now = int(time.time())
    claims = good_claims(iat=now + iat_offset, exp=now + exp_offset)
    token = craft({"alg": "HS256", "typ": "JWT"}, claims, hs256(SECRET))
    assert refused(verifier, token) == "lifetime_too_long"


def test_lifetime_without_iat_is_measured_from_now(verifier: TokenVerifier) -> None:
    now = int(time.time())
    within = craft({"alg": "HS256"}, good_claims(iat=None, exp=now + 11 * 3600), hs256(SECRET))
    assert verifier.verify(within).user_id == "rep-a1"
    beyond = craft({"alg": "HS256"}, good_claims(iat=None, exp=now + 13 * 3600), hs256(SECRET))
    assert refused(verifier, beyond) == "lifetime_too_long"


def test_maximum_lifetime_is_configurable() -> None:
    config = AuthConfig.from_env({"SALESOPS_JWT_SECRET": SECRET.decode(), "SALESOPS_JWT_MAX_LIFETIME": "7d"})
    assert config.max_lifetime == timedelta(days=7)
    week = TokenMinter(config).mint("rep-a1", "demo", ["rep"], ttl=timedelta(days=7))
    assert TokenVerifier(config).verify(week).user_id == "rep-a1"
    assert refused(TokenVerifier(hs_config()), week) == "lifetime_too_long"
    short = hs_config(max_lifetime=timedelta(minutes=30))
    hour = TokenMinter(hs_config()).mint("rep-a1", "demo", ["rep"], ttl=timedelta(hours=1))
    assert refused(TokenVerifier(short), hour) == "lifetime_too_long"


def test_minter_stays_within_the_maximum_lifetime() -> None:
    short = TokenMinter(hs_config(max_lifetime=timedelta(minutes=30)))
    with pytest.raises(ValueError, match="SALESOPS_JWT_MAX_LIFETIME"):
        short.mint("rep-a1", "demo", ["rep"], ttl=timedelta(hours=1))
    with pytest.raises(ValueError, match="SALESOPS_JWT_MAX_LIFETIME"):
        TokenMinter(hs_config()).mint("rep-a1", "demo", ["rep"], ttl=timedelta(hours=12, seconds=1))
    # Defaults: 12 h for users, 1 h for services, each capped by the maximum.
    claims = jwt.decode(short.mint("rep-a1", "demo", ["rep"]), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 1800
    claims = jwt.decode(short.mint_service_token("leads", "demo"), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 1800
    default = TokenMinter(hs_config())
    claims = jwt.decode(default.mint("rep-a1", "demo", ["rep"]), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 12 * 3600
    claims = jwt.decode(default.mint_service_token("leads", "demo"), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600


@pytest.mark.parametrize("roles", [["superuser"], ["rep", "root"], ["Admin"], ["admin "]])
def test_unknown_roles_are_refused(verifier: TokenVerifier, roles: list[str]) -> None:
    token = craft({"alg": "HS256"}, good_claims(roles=roles), hs256(SECRET))
    with pytest.raises(AuthError) as caught:
        verifier.verify(token)
    assert caught.value.reason == "unknown_role"
    assert "not in the whitelist" in caught.value.detail


def test_every_known_role_is_accepted(verifier: TokenVerifier) -> None:
    roles = sorted(KNOWN_ROLES)
    token = craft({"alg": "HS256"}, good_claims(roles=roles), hs256(SECRET))
    assert verifier.verify(token).roles == frozenset(roles)


# --------------------------------------------------------------------------- configuration


def test_config_defaults_are_dev_mode() -> None:
    config = AuthConfig.from_env({})
    assert config.alg == "HS256"
    assert config.secret == DEV_SECRET.encode()
    assert len(DEV_SECRET.encode()) >= 32
    assert DEV_SECRET.startswith("salesops-dev-secret-change-me")
    assert config.uses_dev_secret
    assert (config.audience, config.issuer, config.leeway_seconds) == ("salesops", None, 30)
    assert (config.max_lifetime, config.environment) == (timedelta(hours=12), "embedded")
    assert DEV_SECRET not in repr(config)
    # The dev config really works end to end.
    assert TokenVerifier(config).verify(TokenMinter(config).mint("a", "demo", ["admin"])).is_admin


def test_config_from_env(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    pub = write_pem_public(tmp_path / "pub.pem", rsa_key)
    config = AuthConfig.from_env(
        {
            "SALESOPS_JWT_ALG": "rs256",
            "SALESOPS_JWT_PUBLIC_KEY_FILE": str(pub),
            "SALESOPS_JWT_AUDIENCE": "salesops-prod",
            "SALESOPS_JWT_ISSUER": "https://id.example",
            "SALESOPS_JWT_LEEWAY_SECONDS": "5",
        }
    )
    assert (config.alg, config.public_key_file, config.audience) == ("RS256", pub, "salesops-prod")
    assert (config.issuer, config.leeway_seconds, config.secret) == ("https://id.example", 5, None)
    assert not config.uses_dev_secret
    hs = AuthConfig.from_env({"SALESOPS_JWT_SECRET": SECRET.decode()})
    assert hs.secret == SECRET and not hs.uses_dev_secret


@pytest.mark.parametrize(
    "env",
    [
        {"SALESOPS_JWT_ALG": "none"},
        {"SALESOPS_JWT_ALG": "HS512"},
        {"SALESOPS_JWT_SECRET": "too-short"},
        {"SALESOPS_JWT_ALG": "RS256"},
        {"SALESOPS_JWT_LEEWAY_SECONDS": "soon"},
        {"SALESOPS_JWT_LEEWAY_SECONDS": "-1"},
        {"SALESOPS_JWT_MAX_LIFETIME": "forever"},
        {"SALESOPS_JWT_MAX_LIFETIME": "0"},
        {"SALESOPS_JWT_MAX_LIFETIME": "-5m"},
    ],
)
def test_bad_config_is_rejected(env: dict[str, str]) -> None:
    with pytest.raises(AuthConfigError):
        AuthConfig.from_env(env)


def test_unusable_key_files_are_rejected(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    ec_pub = write_pem_public(tmp_path / "ec.pem", ec_key)
    with pytest.raises(AuthConfigError, match="cannot be used with RS256"):
        TokenVerifier(AuthConfig(alg="RS256", public_key_file=ec_pub))
    with pytest.raises(AuthConfigError, match="P-256"):
        p384 = write_pem_public(tmp_path / "p384.pem", ec.generate_private_key(ec.SECP384R1()))
        TokenVerifier(AuthConfig(alg="ES256", public_key_file=p384))
    with pytest.raises(AuthConfigError, match="SALESOPS_JWT_PUBLIC_KEY_FILE"):
        TokenVerifier(AuthConfig(alg="RS256", public_key_file=tmp_path / "absent.pem"))
    with pytest.raises(AuthConfigError, match="PRIVATE_KEY_FILE"):
        TokenMinter(AuthConfig(alg="RS256", public_key_file=write_pem_public(tmp_path / "r.pem", rsa_key)))
    (tmp_path / "bad.json").write_text('{"keys": []}')
    with pytest.raises(AuthConfigError, match="no signing key"):
        TokenVerifier(AuthConfig(alg="RS256", jwks_file=tmp_path / "bad.json"))


def test_verifier_does_not_reread_key_files(rs_config: AuthConfig) -> None:
    verifier = TokenVerifier(rs_config)
    token = TokenMinter(rs_config).mint("rep-a1", "demo", ["rep"])
    assert rs_config.public_key_file is not None
    rs_config.public_key_file.unlink()
    assert verifier.verify(token).user_id == "rep-a1"


# --------------------------------------------------------------------------- principal


def principal(org: str, *roles: str) -> Principal:
    return Principal(
        user_id="u", tenant="demo", roles=frozenset(roles or {"rep"}), org=org, expires_at=datetime.now(UTC)
    )


@pytest.mark.parametrize(
    ("org", "path", "expected"),
    [
        ("east", "east", True),
        ("east", "east/team-a", True),
        ("east", "east/team-a/pod-1", True),
        ("east", "eastern", False),
        ("east", "eastern/team-a", False),
        ("east/team-a", "east", False),
        ("east/team-a", "east/team-b", False),
        ("east/team-a", "east/team-a", True),
        ("east/team-a", "east/team-ab", False),
        ("east/", "east/team-a", True),
        ("east", "/east/team-a/", True),
        ("east", "", False),
        ("east", "east/../west", False),
        ("", "east", False),
        ("", "", False),
    ],
)
def test_org_contains(org: str, path: str, expected: bool) -> None:
    assert principal(org).org_contains(path) is expected


def test_role_helpers() -> None:
    p = principal("east", "supervisor", "approver")
    assert p.has_role("supervisor") and p.has_role("admin", "approver")
    assert not p.has_role("admin", "director") and not p.has_role()
    assert not p.is_admin and principal("", "admin").is_admin
    with pytest.raises(AttributeError):
        p.org = "west"  # type: ignore[misc]


# --------------------------------------------------------------------------- CLI


def run_cli(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESOPS_JWT_")}
    env["SALESOPS_JWT_SECRET"] = SECRET.decode()
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "kit.tokens", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_mint_and_decode_round_trip() -> None:
    minted = run_cli(
        "mint", "--sub", "rep-a1", "--tenant", "demo", "--roles", "rep", "--org", "east/team-a", "--ttl", "2h"
    )
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    assert token.count(".") == 2 and "\n" not in token

    principal = TokenVerifier(hs_config()).verify(token)
    assert (principal.user_id, principal.tenant, principal.org) == ("rep-a1", "demo", "east/team-a")

    decoded = run_cli("decode", token)
    assert decoded.returncode == 0, decoded.stderr
    claims = json.loads(decoded.stdout)
    assert claims["sub"] == "rep-a1" and claims["roles"] == ["rep"] and claims["tenant"] == "demo"
    assert claims["exp"] - claims["iat"] == 7200

    refused_run = run_cli("decode", token, env_extra={"SALESOPS_JWT_SECRET": OTHER_SECRET.decode()})
    assert refused_run.returncode == 1
    assert "bad_signature" in refused_run.stderr and refused_run.stdout == ""


def test_cli_refuses_a_lifetime_beyond_the_maximum() -> None:
    refused_run = run_cli("mint", "--sub", "rep-a1", "--tenant", "demo", "--roles", "rep", "--ttl", "7d")
    assert refused_run.returncode == 2 and refused_run.stdout == ""
    assert "SALESOPS_JWT_MAX_LIFETIME" in refused_run.stderr
    allowed = run_cli(
        "mint", "--sub", "rep-a1", "--tenant", "demo", "--roles", "rep", "--ttl", "7d",
        env_extra={"SALESOPS_JWT_MAX_LIFETIME": "7d"},
    )  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr


def test_cli_refuses_to_mint_with_the_dev_secret_in_production() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESOPS_")} | {
        "SALESOPS_ENV": "production"
    }
    minted = subprocess.run(
        [sys.executable, "-m", "kit.tokens", "mint", "--sub", "a", "--tenant", "demo", "--roles", "admin"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert minted.returncode == 2 and minted.stdout == ""
    assert "refuses to start" in minted.stderr
