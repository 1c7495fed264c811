"""Inbound webhook signatures: Standard Webhooks v1 / v1a, our X-Salesops scheme, DingTalk's sign.

Pure: bytes and header values in, a verdict out. Every comparison of a MAC is
constant time. The replay window is checked before the signature so a stale
request costs no crypto, and both answers are the same to the sender (401).

Standard Webhooks (https://www.standardwebhooks.com): signed content is
``{webhook-id}.{webhook-timestamp}.{body}``; ``v1`` is base64 HMAC-SHA256 under the
base64-decoded part of a ``whsec_`` secret, ``v1a`` a base64 ed25519 signature
checked with a ``whpk_`` public key; the header holds space-separated
``version,signature`` pairs and any one valid pair passes (rotation overlap).
The ``standardwebhooks`` package has no ``v1a``, hence this module.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

DEFAULT_WINDOW = timedelta(minutes=5)
MAX_WINDOW = timedelta(hours=1)
SECRET_PREFIX = "whsec_"
PUBLIC_KEY_PREFIX = "whpk_"


class Verdict(enum.StrEnum):
    VERIFIED = "VERIFIED"
    MISSING_SIGNATURE = "MISSING_SIGNATURE"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    STALE_TIMESTAMP = "STALE_TIMESTAMP"


@dataclass(frozen=True)
class Checked:
    verdict: Verdict
    signed_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.VERIFIED


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def hmac_key(secret: str) -> bytes:
    """The HMAC key of a signing secret: the decoded part of ``whsec_...``, else the text itself."""
    if secret.startswith(SECRET_PREFIX):
        raw = _b64(secret[len(SECRET_PREFIX) :])
        if raw is not None:
            return raw
    return secret.encode()


def public_key(text: str) -> Ed25519PublicKey | None:
    raw = _b64(text.removeprefix(PUBLIC_KEY_PREFIX))
    if raw is None or len(raw) != 32:
        return None
    return Ed25519PublicKey.from_public_bytes(raw)


def valid_public_key(text: str) -> bool:
    return public_key(text) is not None


def _timestamp(raw: str, now: datetime, window: timedelta, *, millis: bool = False) -> Checked | datetime:
    if not raw.strip().isdigit():
        return Checked(Verdict.MISSING_SIGNATURE)
    seconds = int(raw) / 1000 if millis else int(raw)
    if abs(now.timestamp() - seconds) > window.total_seconds():
        return Checked(Verdict.STALE_TIMESTAMP)
    return datetime.fromtimestamp(seconds, tz=now.tzinfo)


def sign_standard_v1(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64>``: what a sender puts in webhook-signature (used by tests and the demo)."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(hmac_key(secret), content, hashlib.sha256).digest()).decode()


def verify_standard(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str,
    public_key_text: str,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> Checked:
    """Standard Webhooks: any valid ``v1`` (with `secret`) or ``v1a`` (with `public_key_text`) passes."""
    msg_id = headers.get("webhook-id", "")
    raw_ts = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and raw_ts and signatures):
        return Checked(Verdict.MISSING_SIGNATURE)
    at = _timestamp(raw_ts, now, window)
    if isinstance(at, Checked):
        return at
    content = f"{msg_id}.{raw_ts.strip()}.".encode() + body
    expected_v1 = hmac.new(hmac_key(secret), content, hashlib.sha256).digest() if secret else None
    key = public_key(public_key_text) if public_key_text else None
    for pair in signatures.split():
        version, _, value = pair.partition(",")
        given = _b64(value)
        if given is None:
            continue
        if version == "v1" and expected_v1 is not None and hmac.compare_digest(given, expected_v1):
            return Checked(Verdict.VERIFIED, at)
        if version == "v1a" and key is not None:
            try:
                key.verify(given, content)
            except InvalidSignature:
                continue
            return Checked(Verdict.VERIFIED, at)
    return Checked(Verdict.BAD_SIGNATURE)


def sign_salesops(secret: str, timestamp: int, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify_salesops(
    headers: Mapping[str, str], body: bytes, *, secret: str, now: datetime, window: timedelta = DEFAULT_WINDOW
) -> Checked:
    """Our scheme: X-Salesops-Timestamp and X-Salesops-Signature ``v1=<hex>`` (several allowed)."""
    raw_ts = headers.get("x-salesops-timestamp", "")
    signatures = headers.get("x-salesops-signature", "")
    if not (raw_ts and signatures):
        return Checked(Verdict.MISSING_SIGNATURE)
    at = _timestamp(raw_ts, now, window)
    if isinstance(at, Checked):
        return at
    expected = sign_salesops(secret, int(raw_ts), body)
    for value in signatures.replace(",", " ").split():
        if hmac.compare_digest(value.strip().encode(), expected.encode()):
            return Checked(Verdict.VERIFIED, at)
    return Checked(Verdict.BAD_SIGNATURE)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk: base64 HMAC-SHA256(app secret, "<timestamp ms>\\n<app secret>")."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def verify_dingtalk(
    headers: Mapping[str, str], *, secret: str, now: datetime, window: timedelta = DEFAULT_WINDOW
) -> Checked:
    """DingTalk robot callbacks: headers ``timestamp`` (ms) and ``sign``; the body is not signed."""
    raw_ts = headers.get("timestamp", "")
    sign = headers.get("sign", "")
    if not (raw_ts and sign):
        return Checked(Verdict.MISSING_SIGNATURE)
    at = _timestamp(raw_ts, now, window, millis=True)
    if isinstance(at, Checked):
        return at
    if hmac.compare_digest(sign.encode(), dingtalk_sign(secret, int(raw_ts)).encode()):
        return Checked(Verdict.VERIFIED, at)
    return Checked(Verdict.BAD_SIGNATURE)
