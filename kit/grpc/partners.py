"""Partner tokens, checked on every call in Redis: revoked keys and the per-key rate limit.

Why a check and not only short tokens: a partner token lives up to its TTL (15 min by
default), far longer than "revocation takes effect within seconds". Every partner call
already needs one Redis round trip for its key's rate limit (shared by every process of
every service: "requests per minute across services"), so the revocation marker is read
by the same script in the same round trip, at no extra cost; user and service tokens
never touch Redis here. The marker outlives any token minted before it (the longest
token lifetime plus the clock leeway), then expires by itself.

Fails closed: without Redis a partner call is UNAVAILABLE (retry), never let through
unchecked. If Redis loses its data, tokens of a revoked key work until they expire
(at most the partner token TTL); the exchange itself reads the key's state in the database.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import timedelta
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from kit.auth import AuthConfig, Principal
from kit.errors import ResourceExhausted, Unauthenticated, Unavailable

log = logging.getLogger("salesops.grpc.partners")

DEFAULT_RATE_PER_MINUTE: Final = 600
FAILURES_PER_MINUTE: Final = 30
WINDOW_MS: Final = 60_000
PREFIX: Final = "salesops:partner:"

# KEYS: revoked marker, counter prefix. ARGV: limit, now_ms, window_ms.
# Reply: {1, 0} admitted (and counted), {-1, 0} revoked, {-2, wait_ms} over the rate.
# A sliding window from two fixed windows, weighted (as the gateway's limiter).
_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {-1, 0} end
local limit = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local w = tonumber(ARGV[3])
local idx = math.floor(now / w)
local into = now - idx * w
local cur = KEYS[2] .. idx
local c = tonumber(redis.call('GET', cur) or '0')
local p = tonumber(redis.call('GET', KEYS[2] .. (idx - 1)) or '0')
if p * (1 - into / w) + c + 1 > limit then
  local wait = w - into
  if p > 0 and c + 1 <= limit then
    wait = math.ceil((1 - (limit - 1 - c) / p) * w - into)
  end
  return {-2, math.max(wait, 1)}
end
redis.call('INCR', cur)
redis.call('PEXPIRE', cur, 2 * w)
return {1, 0}
"""


def partner_marker_ttl(config: AuthConfig) -> timedelta:
    """How long a revocation marker must live: past the expiry of any token minted before it."""
    return config.max_lifetime + timedelta(seconds=config.leeway_seconds + 60)


def revoked_key(tenant: str, key_id: str) -> str:
    return f"{PREFIX}revoked:{tenant}:{key_id}"


def _rate_prefix(tenant: str, key_id: str) -> str:
    return f"{PREFIX}rate:{tenant}:{key_id}:"


class PartnerGuard:
    """Admits partner calls (not revoked, within the key's rate); marks keys revoked."""

    def __init__(self, redis: Redis, *, marker_ttl: timedelta = timedelta(hours=13)) -> None:
        self.redis = redis
        self.marker_ttl = marker_ttl
        self._script: Any = redis.register_script(_SCRIPT)

    async def admit(self, who: Principal) -> None:
        """Raise unless this partner call may proceed; counts it against the key's rate."""
        if not who.partner_key_id:
            raise Unauthenticated("partner token names no key", reason="INVALID_CLAIM")
        await self.admit_key(who.tenant, who.partner_key_id, who.rate_limit_per_minute)

    async def admit_key(self, tenant: str, key_id: str, rate_per_minute: int) -> None:
        limit = rate_per_minute if rate_per_minute > 0 else DEFAULT_RATE_PER_MINUTE
        keys = [revoked_key(tenant, key_id), _rate_prefix(tenant, key_id)]
        try:
            verdict, wait_ms = await self._script(keys=keys, args=[limit, int(time.time() * 1000), WINDOW_MS])
        except RedisError as exc:
            log.warning("partner check unavailable: %s", type(exc).__name__)
            raise Unavailable(
                "partner checks are unavailable; retry", reason="PARTNER_CHECK_UNAVAILABLE"
            ) from None
        if int(verdict) == -1:
            raise Unauthenticated("the partner key was revoked", reason="PARTNER_KEY_REVOKED")
        if int(verdict) == -2:
            raise ResourceExhausted(
                f"partner key rate limit of {limit} requests per minute reached",
                subject=f"partner-key:{key_id}",
                retry_after_seconds=math.ceil(int(wait_ms) / 1000),
                reason="PARTNER_RATE_LIMITED",
            )

    async def revoke(self, tenant: str, key_id: str) -> None:
        """Refuse every token of the key from now on (raises RedisError: the caller reports it)."""
        await self.redis.set(revoked_key(tenant, key_id), "1", ex=self.marker_ttl)

    async def address_blocked(self, address: str) -> bool:
        """True once `address` failed more exchanges this minute than allowed (guessing slows down)."""
        try:
            count = await self.redis.get(self._failures(address))
        except RedisError:
            return False  # the exchange still checks the secret; this only slows guessing
        return int(count or 0) >= FAILURES_PER_MINUTE

    async def note_failure(self, address: str) -> None:
        key = self._failures(address)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, 120)
                await pipe.execute()
        except RedisError:
            log.warning("could not count a failed partner exchange")

    @staticmethod
    def _failures(address: str) -> str:
        return f"{PREFIX}fail:{address}:{int(time.time() // 60)}"
