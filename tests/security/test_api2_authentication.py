"""OWASP API2:2023 Broken Authentication: forged, stolen-forever and over-privileged tokens.

Every service verifies every call with `kit.auth.TokenVerifier` (the gateway uses the same
verifier), so these attacks go to a real gRPC server built by the kit, as a partner calling a
service directly would. The attacker knows the token format and, in embedded mode, the
documented dev secret; production refuses that secret (test_api8_misconfiguration).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.rpc import error_details_pb2

from deploy.local.infra import free_port
from kit.auth import AuthConfig, TokenMinter, TokenVerifier
from kit.config import GrpcSettings
from kit.grpc import diagnostics
from kit.grpc.errors import status_from_error
from kit.grpc.server import GrpcServer
from salesops.common.v1 import diagnostics_pb2, diagnostics_pb2_grpc

HS = AuthConfig(secret=b"security-suite-secret-that-is-long-enough-0123")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A token built by hand, HMAC-signed with `key` (unsigned when None), as an attacker would."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest() if key else b""
    return f"{signing_input}.{_b64(signature)}"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": "rep-a1",
        "tenant": "demo",
        "roles": ["rep"],
        "org": "east/team-a",
        "aud": "salesops",
        "iat": now,
        "exp": now + 600,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def grpc_settings() -> GrpcSettings:
    return GrpcSettings(f"127.0.0.1:{free_port()}", False, 1.0, 5.0, 4 << 20, 30_000, 10_000)


@pytest.fixture
async def service() -> AsyncIterator[str]:
    server = GrpcServer("leads", grpc_settings(), TokenVerifier(HS), [diagnostics.registration("leads")])
    await server.start()
    yield server.address
    await server.stop(0)


async def who_am_i(address: str, token: str) -> diagnostics_pb2.WhoAmIResponse:
    async with grpc.aio.insecure_channel(address) as ch:
        stub = diagnostics_pb2_grpc.DiagnosticsServiceStub(ch)
        return await stub.WhoAmI(
            diagnostics_pb2.WhoAmIRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=5
        )


async def refusal(address: str, token: str) -> str:
    """The ErrorInfo reason of an UNAUTHENTICATED answer (fails the test on any other outcome)."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await who_am_i(address, token)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, info.value.details()
    for detail in status_from_error(info.value).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            error_info = error_details_pb2.ErrorInfo()
            detail.Unpack(error_info)
            return str(error_info.reason)
    raise AssertionError("UNAUTHENTICATED without an ErrorInfo reason")


async def test_a_genuine_token_is_accepted(service: str) -> None:
    reply = await who_am_i(service, TokenMinter(HS).mint("rep-a1", "demo", ["rep"], org="east/team-a"))
    assert (reply.user_id, list(reply.roles)) == ("rep-a1", ["rep"])


@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
async def test_unsigned_token_alg_none_is_refused(service: str, alg: str) -> None:
    assert (
        await refusal(service, forge({"alg": alg, "typ": "JWT"}, claims(roles=["admin"]), None))
        == "BAD_ALGORITHM"
    )


async def test_key_confusion_hs256_signed_with_the_public_key_is_refused(tmp_path: Path) -> None:
    """RS256 deployment: the public key is public, so an HS256 token keyed with it must not pass."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "pub.pem").write_bytes(pem)
    rs = AuthConfig(alg="RS256", public_key_file=tmp_path / "pub.pem")
    server = GrpcServer("leads", grpc_settings(), TokenVerifier(rs), [diagnostics.registration("leads")])
    await server.start()
    try:
        forged = forge({"alg": "HS256", "typ": "JWT"}, claims(roles=["admin"]), pem)
        assert await refusal(server.address, forged) == "BAD_ALGORITHM"
        genuine = jwt.encode(claims(), key, algorithm="RS256")
        assert (await who_am_i(server.address, genuine)).user_id == "rep-a1"
    finally:
        await server.stop(0)


async def test_expired_token_is_refused(service: str) -> None:
    now = int(time.time())
    stale = forge({"alg": "HS256"}, claims(iat=now - 7200, exp=now - 3600), HS.secret)
    assert await refusal(service, stale) == "EXPIRED"


async def test_token_without_exp_is_refused(service: str) -> None:
    assert await refusal(service, forge({"alg": "HS256"}, claims(exp=None), HS.secret)) == "MISSING_CLAIM"


@pytest.mark.parametrize(
    ("iat_offset", "exp_offset"),
    [
        (0, 30 * 86400),  # a month-long token
        (0, 10 * 365 * 86400),  # "never expires" in practice
        (-29 * 86400, 86400),  # issued a month ago, a day left: still a month-long token
        (None, 30 * 86400),  # no iat: measured from now
    ],
)
async def test_token_living_beyond_the_maximum_lifetime_is_refused(
    service: str, iat_offset: int | None, exp_offset: int
) -> None:
    """A leaked long-lived token is a long-lived breach: anything beyond 12 h (default) is refused."""
    now = int(time.time())
    iat = None if iat_offset is None else now + iat_offset
    token = forge({"alg": "HS256"}, claims(iat=iat, exp=now + exp_offset), HS.secret)
    assert await refusal(service, token) == "LIFETIME_TOO_LONG"


@pytest.mark.parametrize("roles", [["superadmin"], ["rep", "root"], ["Admin"], ["*"]])
async def test_unknown_role_names_are_refused(service: str, roles: list[str]) -> None:
    """Roles outside the whitelist are a forged or misissued token, not a role to ignore."""
    assert await refusal(service, forge({"alg": "HS256"}, claims(roles=roles), HS.secret)) == "UNKNOWN_ROLE"


async def test_refusals_name_the_reason_but_never_echo_the_token(service: str) -> None:
    token = forge({"alg": "HS256"}, claims(roles=["superadmin"]), HS.secret)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await who_am_i(service, token)
    details = info.value.details() or ""
    assert "unknown_role" in details
    assert token not in details and token.split(".")[1] not in details
