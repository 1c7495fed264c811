"""Inbound signature schemes: the Standard Webhooks test vector, v1a ed25519, ours, DingTalk's; replay window."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.integration.domain import signatures as s

# The specification's example (standard-webhooks/spec, and every reference library's tests).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TS = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
AT = datetime.fromtimestamp(TS, tz=UTC)


def std(sig: str, ts: int = TS, msg_id: str = MSG_ID) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}


def test_the_specs_vector_signs_and_verifies() -> None:
    assert s.sign_standard_v1(SECRET, MSG_ID, TS, BODY) == EXPECTED
    got = s.verify_standard(std(EXPECTED), BODY, secret=SECRET, public_key_text="", now=AT)
    assert got.verdict is s.Verdict.VERIFIED and got.signed_at == AT


@pytest.mark.parametrize(
    ("headers", "body", "verdict"),
    [
        (std(EXPECTED), BODY + b" ", s.Verdict.BAD_SIGNATURE),  # one byte more
        (std(EXPECTED, msg_id="msg_other"), BODY, s.Verdict.BAD_SIGNATURE),  # id is signed
        (std(EXPECTED, ts=TS + 1), BODY, s.Verdict.BAD_SIGNATURE),  # timestamp is signed
        (std("v2," + EXPECTED[3:]), BODY, s.Verdict.BAD_SIGNATURE),  # unknown version
        (std("v1,not base64!"), BODY, s.Verdict.BAD_SIGNATURE),
        ({"webhook-id": MSG_ID, "webhook-timestamp": str(TS)}, BODY, s.Verdict.MISSING_SIGNATURE),
        (std(EXPECTED, ts=0) | {"webhook-timestamp": "abc"}, BODY, s.Verdict.MISSING_SIGNATURE),
    ],
)
def test_tampering_is_refused(headers: dict[str, str], body: bytes, verdict: s.Verdict) -> None:
    assert s.verify_standard(headers, body, secret=SECRET, public_key_text="", now=AT).verdict is verdict


def test_replay_window_both_ways_and_rotation_overlap() -> None:
    for offset, verdict in [
        (299, s.Verdict.VERIFIED),
        (301, s.Verdict.STALE_TIMESTAMP),
        (-301, s.Verdict.STALE_TIMESTAMP),
    ]:
        got = s.verify_standard(
            std(EXPECTED), BODY, secret=SECRET, public_key_text="", now=AT + timedelta(seconds=offset)
        )
        assert got.verdict is verdict, offset
    # A sender rotating its secret sends both signatures; either one passes, the order does not matter.
    other = s.sign_standard_v1(
        "whsec_" + base64.b64encode(b"another key of 24 bytes!").decode(), MSG_ID, TS, BODY
    )
    assert s.verify_standard(std(f"{other} {EXPECTED}"), BODY, secret=SECRET, public_key_text="", now=AT).ok
    assert not s.verify_standard(std(other), BODY, secret=SECRET, public_key_text="", now=AT).ok
    # A wider configured window lets an hour-old request in.
    late = AT + timedelta(minutes=30)
    assert s.verify_standard(
        std(EXPECTED), BODY, secret=SECRET, public_key_text="", now=late, window=timedelta(hours=1)
    ).ok


def test_v1a_ed25519() -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    pub = "whpk_" + base64.b64encode(raw).decode()
    signed = f"{MSG_ID}.{TS}.".encode() + BODY
    sig = "v1a," + base64.b64encode(key.sign(signed)).decode()
    assert s.verify_standard(std(sig), BODY, secret="", public_key_text=pub, now=AT).ok
    assert not s.verify_standard(std(sig), BODY + b"x", secret="", public_key_text=pub, now=AT).ok
    stranger = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert not s.verify_standard(
        std(sig), BODY, secret="", public_key_text="whpk_" + base64.b64encode(stranger).decode(), now=AT
    ).ok
    # A v1a signature is not accepted as v1, nor with only a secret configured.
    assert not s.verify_standard(std(sig), BODY, secret=SECRET, public_key_text="", now=AT).ok
    assert s.valid_public_key(pub) and not s.valid_public_key("whpk_AAAA")


def test_rfc8032_vector_through_the_verifier_key_loader() -> None:
    # RFC 8032 section 7.1, TEST 2: the loader takes the raw 32-byte public key as the spec's whpk_ form.
    pub = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
    sig = bytes.fromhex(
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
    )
    key = s.public_key("whpk_" + base64.b64encode(pub).decode())
    assert key is not None
    key.verify(sig, bytes.fromhex("72"))  # raises InvalidSignature otherwise


def test_our_scheme_and_dingtalk() -> None:
    secret, body = "s3cret-of-the-connector", b'{"id":"e1"}'
    headers = {"x-salesops-timestamp": str(TS), "x-salesops-signature": s.sign_salesops(secret, TS, body)}
    assert s.verify_salesops(headers, body, secret=secret, now=AT).ok
    assert s.verify_salesops(headers, body + b" ", secret=secret, now=AT).verdict is s.Verdict.BAD_SIGNATURE
    assert (
        s.verify_salesops(headers, body, secret=secret, now=AT + timedelta(minutes=6)).verdict
        is s.Verdict.STALE_TIMESTAMP
    )
    ms = TS * 1000 + 123
    ding = {"timestamp": str(ms), "sign": s.dingtalk_sign("app-secret", ms)}
    assert s.verify_dingtalk(ding, secret="app-secret", now=AT).ok
    assert s.verify_dingtalk(ding, secret="other", now=AT).verdict is s.Verdict.BAD_SIGNATURE
    assert (
        s.verify_dingtalk(ding, secret="app-secret", now=AT + timedelta(minutes=6)).verdict
        is s.Verdict.STALE_TIMESTAMP
    )
    assert (
        s.verify_dingtalk({"timestamp": str(ms)}, secret="app-secret", now=AT).verdict
        is s.Verdict.MISSING_SIGNATURE
    )
