"""Per-tenant and per-user rate limits in Redis: a sliding window (two weighted fixed windows).

One script call checks and counts both policies atomically, so a request is
counted only when every policy lets it through. Keys carry the tenant, so one
tenant's flood only ever fills its own counters.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("salesops.gateway.ratelimit")

_SCRIPT = """
local now = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local idx = math.floor(now / w)
local into = now - idx * w
local elapsed = into / w
local allowed = 1
local state = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 + i])
  local cur = tonumber(redis.call('GET', key .. ':' .. idx) or '0')
  local prev = tonumber(redis.call('GET', key .. ':' .. (idx - 1)) or '0')
  local est = prev * (1 - elapsed) + cur
  state[i] = {limit, cur, prev, est}
  if est + 1 > limit then allowed = 0 end
end
local out = {allowed}
for i, key in ipairs(KEYS) do
  local limit, cur, prev, est = state[i][1], state[i][2], state[i][3], state[i][4]
  if allowed == 1 then
    redis.call('INCR', key .. ':' .. idx)
    redis.call('PEXPIRE', key .. ':' .. idx, w * 2)
    est = est + 1
  end
  local wait = 0
  if est + 1 > limit then
    if cur + 1 <= limit and prev > 0 then
      wait = (1 - (limit - 1 - cur) / prev) * w - into
    else
      local again = 0
      if cur > 0 then again = math.max(0, 1 - (limit - 1) / cur) end
      wait = (w - into) + again * w
    end
  else
    wait = w - into
  end
  out[#out + 1] = math.max(0, math.floor(limit - est))
  out[#out + 1] = math.ceil(math.max(wait, 1))
  out[#out + 1] = (est + 1 > limit) and 1 or 0
end
return out
"""


@dataclass(frozen=True)
class Policy:
    name: str
    limit: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    headers: dict[str, str]
    retry_after_seconds: int = 0
    blocked_by: str = ""


class RateLimiter:
    def __init__(self, redis: Redis, tenant_limit: int, user_limit: int, window_seconds: int) -> None:
        self.redis = redis
        self.window_ms = window_seconds * 1000
        self.window = window_seconds
        self.policies = [
            p for p in (Policy("tenant", tenant_limit), Policy("user", user_limit)) if p.limit > 0
        ]
        self._script: Any = redis.register_script(_SCRIPT)
        self.policy_header = ", ".join(f'"{p.name}";q={p.limit};w={window_seconds}' for p in self.policies)

    async def check(self, tenant: str, user: str) -> Decision:
        if not self.policies:
            return Decision(True, {})
        keys = [
            f"gw:rl:{p.name}:{tenant}" if p.name == "tenant" else f"gw:rl:{p.name}:{tenant}:{user}"
            for p in self.policies
        ]
        try:
            raw = await self._script(
                keys=keys, args=[int(time.time() * 1000), self.window_ms, *(p.limit for p in self.policies)]
            )
        except RedisError as exc:
            # Fail open: a Redis outage must not take the API down; the services keep their own caps.
            log.warning("rate limit check skipped: %s", exc)
            return Decision(True, {})
        allowed = bool(raw[0])
        parts, retry, blocked = [], 0, ""
        for i, p in enumerate(self.policies):
            remaining, wait_ms, over = int(raw[1 + 3 * i]), int(raw[2 + 3 * i]), int(raw[3 + 3 * i])
            seconds = max(1, -(-wait_ms // 1000))
            parts.append(f'"{p.name}";r={remaining};t={seconds}')
            if not allowed and over and seconds > retry:
                retry, blocked = seconds, p.name
        headers = {"RateLimit-Policy": self.policy_header, "RateLimit": ", ".join(parts)}
        if not allowed:
            headers["Retry-After"] = str(retry)
        return Decision(allowed, headers, retry, blocked)
