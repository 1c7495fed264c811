"""`Idempotency-Key` for writes, kept in Redis per tenant and user.

The first request with a key claims it (SET NX, "running"); when it ends the
response is stored for the retention period (24 h by default) and replayed to
any later request with the same key and the same fingerprint (method, path,
query, body). Another body under the same key -> 422; a retry while the first
is still running -> 409. Server-side failures (5xx, 429) release the key so the
client can retry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from redis.asyncio import Redis

from kit import errors

MAX_KEY_CHARS = 255


class KeyInFlight(errors.Aborted):
    """Same key while the first request still runs: HTTP 409."""


class KeyReused(errors.SalesopsError):
    """Same key with another request: HTTP 422 (the gateway's own mapping), INVALID_ARGUMENT in the body."""

    code_name = "INVALID_ARGUMENT"


@dataclass(frozen=True)
class Stored:
    status: int
    body: bytes
    content_type: str


def _canonical(body: bytes) -> bytes:
    """The same JSON with other spacing or key order is the same request (a phone re-serialises)."""
    try:
        return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        return body


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), _canonical(body) if body else b""):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_CHARS or not key.isprintable():
        raise errors.InvalidArgument.field(
            "Idempotency-Key", f"must be 1-{MAX_KEY_CHARS} printable characters"
        )


class IdempotencyStore:
    def __init__(self, redis: Redis, ttl_seconds: int, running_ttl_seconds: float) -> None:
        self.redis = redis
        self.ttl = ttl_seconds
        # A crashed gateway must not pin a key forever: the claim expires after the longest call.
        self.running_ttl_ms = int(running_ttl_seconds * 1000)

    @staticmethod
    def _key(tenant: str, user: str, key: str) -> str:
        return f"gw:idem:{len(tenant)}:{tenant}:{len(user)}:{user}:{key}"

    async def begin(self, tenant: str, user: str, key: str, fp: str) -> Stored | None:
        """Claim `key` (None: go ahead) or return the stored response; raises 409/422 errors."""
        check_key(key)
        rkey = self._key(tenant, user, key)
        claim = json.dumps({"state": "running", "fp": fp})
        if await self.redis.set(rkey, claim, nx=True, px=self.running_ttl_ms):
            return None
        raw = await self.redis.get(rkey)
        if raw is None:  # expired between the two calls: claim again
            if await self.redis.set(rkey, claim, nx=True, px=self.running_ttl_ms):
                return None
            raise KeyInFlight(
                "a request with this Idempotency-Key is in progress", reason="IDEMPOTENCY_IN_FLIGHT"
            )
        record = json.loads(raw)
        if record["fp"] != fp:
            raise KeyReused(
                "this Idempotency-Key was used with a different request", reason="IDEMPOTENCY_KEY_REUSED"
            )
        if record["state"] == "running":
            raise KeyInFlight(
                "a request with this Idempotency-Key is in progress", reason="IDEMPOTENCY_IN_FLIGHT"
            )
        return Stored(int(record["status"]), record["body"].encode(), record["content_type"])

    async def finish(self, tenant: str, user: str, key: str, fp: str, stored: Stored) -> None:
        rkey = self._key(tenant, user, key)
        if stored.status >= 500 or stored.status == 429:
            await self.redis.delete(rkey)
            return
        record = {
            "state": "done",
            "fp": fp,
            "status": stored.status,
            "body": stored.body.decode(),
            "content_type": stored.content_type,
        }
        await self.redis.set(rkey, json.dumps(record), ex=self.ttl)

    async def release(self, tenant: str, user: str, key: str) -> None:
        await self.redis.delete(self._key(tenant, user, key))
