"""Signing outbound deliveries the Standard Webhooks way: `v1` (HMAC-SHA256) and `v1a` (ed25519).

Signed content is ``{webhook-id}.{webhook-timestamp}.{body}``, as domain/signatures.py
verifies it. During a rotation's overlap the previous secret (or key) signs too:
the header carries both, space-separated, and a receiver that knows either passes.
"""

from __future__ import annotations

import base64
import secrets as random

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.integration.domain.signatures import PUBLIC_KEY_PREFIX, SECRET_PREFIX, sign_standard_v1

PRIVATE_KEY_PREFIX = "whsk_"  # our own spelling for a sealed ed25519 private key; never leaves the server
MIN_SECRET_BYTES = 24


def new_hmac_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(random.token_bytes(32)).decode()


def new_ed25519_key() -> tuple[str, str]:
    """(private "whsk_<base64 seed>", public "whpk_<base64 key>")."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    return PRIVATE_KEY_PREFIX + base64.b64encode(seed).decode(), public_of(seed)


def public_of(seed: bytes) -> str:
    raw = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode()


def valid_hmac_secret(secret: str) -> bool:
    """whsec_ + base64 of at least 24 bytes (Standard Webhooks secrets are 24..64 bytes)."""
    if not secret.startswith(SECRET_PREFIX):
        return False
    try:
        raw = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except ValueError:
        return False
    return MIN_SECRET_BYTES <= len(raw) <= 64


def sign_v1a(private: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1a,<base64 ed25519 signature>`` with a whsk_ private key."""
    seed = base64.b64decode(private.removeprefix(PRIVATE_KEY_PREFIX))
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1a," + base64.b64encode(Ed25519PrivateKey.from_private_bytes(seed).sign(content)).decode()


def sign_one(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    if secret.startswith(PRIVATE_KEY_PREFIX):
        return sign_v1a(secret, msg_id, timestamp, body)
    return sign_standard_v1(secret, msg_id, timestamp, body)


def signature_header(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature value: one signature per live secret (new first), space-separated."""
    return " ".join(sign_one(s, msg_id, timestamp, body) for s in secrets if s)
