"""AIP-158 paging: page sizes and opaque, tamper-evident keyset page tokens.

A token carries the sort-key values of the last row of a page (keyset paging:
deep pages cost the same as the first, and rows inserted meanwhile neither repeat
nor vanish). It is base64url of `body || HMAC-SHA256(secret, tenant, query, body)`,
so a token is only good for the tenant and the query (filter + order + resource)
that produced it; anything else is INVALID_ARGUMENT on `page_token`.

The secret is `SALESOPS_PAGE_TOKEN_SECRET`, else derived from the JWT signing
secret (or private key), so every replica of a service agrees without extra setup.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from google.protobuf.message import Message

from kit.auth import AuthConfig
from kit.config import ConfigError
from kit.errors import InvalidArgument

PAGE_TOKEN_SECRET_ENV = "SALESOPS_PAGE_TOKEN_SECRET"
MIN_SECRET_BYTES = 16
_VERSION = b"\x01"
_MAC_BYTES = 16  # 128 bits: forging is hopeless, tokens stay short
_DERIVE_LABEL = b"salesops.page-token.v1"
_BAD = "not a page token from a previous response to this request"


@dataclass(frozen=True)
class PageRequest:
    """A checked page size and the raw token ("" for the first page)."""

    size: int
    token: str = ""

    @classmethod
    def parse(cls, page_size: int, page_token: str, *, default: int = 50, maximum: int = 500) -> PageRequest:
        """0 means `default`; above `maximum` is clamped (AIP-158); negative is INVALID_ARGUMENT."""
        if page_size < 0:
            raise InvalidArgument.field("page_size", "must not be negative")
        size = default if page_size == 0 else min(page_size, maximum)
        return cls(size=size, token=page_token)


def query_key(*parts: object) -> str:
    """A stable fingerprint of what defines a query: strings, numbers, protos (deterministic bytes)."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Message):
            raw = type(part).DESCRIPTOR.full_name.encode() + b":" + part.SerializeToString(deterministic=True)
        else:
            raw = repr(part).encode()
        digest.update(len(raw).to_bytes(4, "big"))
        digest.update(raw)
    return digest.hexdigest()


def _pack(value: Any) -> Any:
    # Tagged so a value decodes to the type it was (a datetime stays a datetime).
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return {"i": str(value)}
    if isinstance(value, float):
        return {"f": value.hex()}
    if isinstance(value, Decimal):
        return {"n": str(value)}
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, bytes):
        return {"b": base64.b64encode(value).decode()}
    raise TypeError(f"cannot put a {type(value).__name__} in a page token")


def _unpack(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if not isinstance(value, Mapping) or len(value) != 1:
        raise ValueError("bad value")
    ((tag, raw),) = value.items()
    if not isinstance(raw, str):
        raise ValueError("bad value")
    if tag == "i":
        return int(raw)
    if tag == "f":
        return float.fromhex(raw)
    if tag == "n":
        return Decimal(raw)
    if tag == "t":
        return datetime.fromisoformat(raw)
    if tag == "d":
        return date.fromisoformat(raw)
    if tag == "b":
        return base64.b64decode(raw, validate=True)
    raise ValueError("bad tag")


class PageTokens:
    """Signs and checks keyset page tokens with one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigError(f"the page token secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PageTokens:
        return cls(page_token_secret(environ))

    def _mac(self, tenant: str, query: str, body: bytes) -> bytes:
        mac = hmac.new(self._secret, digestmod=hashlib.sha256)
        for part in (tenant.encode(), query.encode(), body):
            mac.update(len(part).to_bytes(4, "big"))
            mac.update(part)
        return mac.digest()[:_MAC_BYTES]

    def encode(self, tenant: str, query: str, last: Sequence[Any]) -> str:
        body = _VERSION + json.dumps([_pack(v) for v in last], separators=(",", ":")).encode()
        raw = body + self._mac(tenant, query, body)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def decode(self, token: str, tenant: str, query: str) -> list[Any]:
        """The values encoded by `encode` for this tenant and query, else INVALID_ARGUMENT."""
        try:
            raw = base64.urlsafe_b64decode(token.encode("ascii") + b"=" * (-len(token) % 4))
        except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
            raise InvalidArgument.field("page_token", _BAD) from exc
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(raw) <= _MAC_BYTES + 1 or not hmac.compare_digest(mac, self._mac(tenant, query, body)):
            raise InvalidArgument.field("page_token", _BAD)
        if body[:1] != _VERSION:
            raise InvalidArgument.field("page_token", _BAD)
        try:
            values = json.loads(body[1:])
            if not isinstance(values, list):
                raise ValueError("not a list")
            return [_unpack(v) for v in values]
        except (ValueError, TypeError, binascii.Error) as exc:
            raise InvalidArgument.field("page_token", _BAD) from exc


def page_token_secret(environ: Mapping[str, str] | None = None) -> bytes:
    """`SALESOPS_PAGE_TOKEN_SECRET`, else a key derived from the JWT secret (or signing key)."""
    env = os.environ if environ is None else environ
    explicit = env.get(PAGE_TOKEN_SECRET_ENV, "").strip()
    if explicit:
        if len(explicit.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"{PAGE_TOKEN_SECRET_ENV} must be at least {MIN_SECRET_BYTES} bytes")
        return explicit.encode()
    auth = AuthConfig.from_env(env)
    root = auth.secret
    if root is None and auth.private_key_file is not None:
        root = auth.private_key_file.read_bytes()
    if root is None:
        raise ConfigError(f"{PAGE_TOKEN_SECRET_ENV} is needed when tokens are checked with a public key only")
    return hmac.new(root, _DERIVE_LABEL, hashlib.sha256).digest()


__all__ = [
    "PAGE_TOKEN_SECRET_ENV",
    "PageRequest",
    "PageTokens",
    "page_token_secret",
    "query_key",
]
