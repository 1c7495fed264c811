"""Per-tenant and per-user rate limits in Redis: a sliding window (two weighted fixed windows).

Requests that fail authentication are limited per client address instead (`check_address`);
an address over its limit is remembered in the process (`Blocked`) so its next requests are
refused before their token is even verified: a guess then learns nothing.

One script call checks and counts every policy of a request atomically, so a
request is counted only when all its policies let it through. Keys carry the
tenant, so one tenant's flood only ever fills its own counters. One script call
is in flight at a time and the checks that arrive meanwhile travel together in
the next (one round trip and one reply line per request instead of a command
each): the script takes them one by one, in arrival order, so the result is the
same as separate calls.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("salesops.gateway.ratelimit")

# KEYS: per request, one counter prefix per policy. ARGV: now_ms, window_ms, policies, limits...
# Reply: one line per request, "allowed" then per policy "remaining,wait_ms,over", comma-separated.
_SCRIPT = """
local now = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local np = tonumber(ARGV[3])
local idx = math.floor(now / w)
local into = now - idx * w
local elapsed = into / w
local lines = {}
for r = 0, (#KEYS / np) - 1 do
  local allowed = 1
  local state = {}
  for p = 1, np do
    local key = KEYS[r * np + p]
    local limit = tonumber(ARGV[3 + p])
    local cur = tonumber(redis.call('GET', key .. ':' .. idx) or '0')
    local prev = tonumber(redis.call('GET', key .. ':' .. (idx - 1)) or '0')
    local est = prev * (1 - elapsed) + cur
    state[p] = {limit, cur, prev, est}
    if est + 1 > limit then allowed = 0 end
  end
  local out = {tostring(allowed)}
  for p = 1, np do
    local key = KEYS[r * np + p]
    local limit, cur, prev, est = state[p][1], state[p][2], state[p][3], state[p][4]
    if allowed == 1 then
      redis.call('INCR', key .. ':' .. idx)
      redis.call('PEXPIRE', key .. ':' .. idx, w * 2)
      est = est + 1
      cur = cur + 1
    end
    local wait
    local over = 0
    if est + 1 > limit then
      over = 1
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
    out[#out + 1] = string.format('%d,%d,%d', math.max(0, math.floor(limit - est)), math.ceil(math.max(wait, 1)), over)
  end
  lines[#lines + 1] = table.concat(out, ',')
end
return table.concat(lines, ';')
"""


# After Redis failed a check (down, or silent past the client's timeout), checks fail open at once
# for this long instead of each waiting out the timeout again; then the next batch asks Redis again.
FAIL_OPEN_SECONDS = 5.0


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


class Windows:
    """Sliding-window counters for one set of policies; concurrent checks share script calls."""

    def __init__(self, redis: Redis, policies: list[Policy], window_seconds: int) -> None:
        self.redis = redis
        self.window_ms = window_seconds * 1000
        self.policies = [p for p in policies if p.limit > 0]
        self._script: Any = redis.register_script(_SCRIPT)
        self.policy_header = ", ".join(f'"{p.name}";q={p.limit};w={window_seconds}' for p in self.policies)
        self._pending: list[tuple[list[str], asyncio.Future[str | None]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # One script call in flight at a time; checks arriving meanwhile ride the next one.
        self._in_flight = False
        self._open_until = 0.0  # monotonic: until then Redis is not asked (FAIL_OPEN_SECONDS)

    async def check(self, keys: list[str]) -> Decision:
        """`keys`: one counter prefix per policy, in the order of `policies`."""
        if not self.policies or (self._open_until and time.monotonic() < self._open_until):
            return Decision(True, {})
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str | None] = loop.create_future()
        self._pending.append((keys, future))
        if not self._in_flight:
            self._in_flight = True
            loop.call_soon(self._flush)
        line = await future
        if line is None:  # Redis unreachable: fail open, the services keep their own caps
            return Decision(True, {})
        return self._decision(line)

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[list[str], asyncio.Future[str | None]]]) -> None:
        keys = [k for ks, _ in batch for k in ks]
        args = [
            int(time.time() * 1000),
            self.window_ms,
            len(self.policies),
            *(p.limit for p in self.policies),
        ]
        lines: list[str | None] = [None] * len(batch)
        try:
            raw = await self._script(keys=keys, args=args)
            lines = list(raw.decode().split(";"))
        except (RedisError, OSError) as exc:
            self._open_until = time.monotonic() + FAIL_OPEN_SECONDS
            log.warning("rate limit checks skipped for %g s: %s", FAIL_OPEN_SECONDS, exc)
        except BaseException:
            log.exception("rate limit check failed")
            raise
        finally:
            # Whatever happened, every waiting request gets an answer and the next batch goes out.
            for i, (_, future) in enumerate(batch):
                if not future.done():
                    future.set_result(lines[i] if i < len(lines) else None)
            if self._pending:
                self._flush()
            else:
                self._in_flight = False

    def _decision(self, line: str) -> Decision:
        values = [int(v) for v in line.split(",")]
        allowed = bool(values[0])
        parts, retry, blocked = [], 0, ""
        for i, p in enumerate(self.policies):
            remaining, wait_ms, over = values[1 + 3 * i : 4 + 3 * i]
            seconds = max(1, -(-wait_ms // 1000))
            parts.append(f'"{p.name}";r={remaining};t={seconds}')
            if not allowed and over and seconds > retry:
                retry, blocked = seconds, p.name
        headers = {"RateLimit-Policy": self.policy_header, "RateLimit": ", ".join(parts)}
        if not allowed:
            headers["Retry-After"] = str(retry)
        return Decision(allowed, headers, retry, blocked)


class RateLimiter:
    """Per tenant and user for authenticated requests; per client address for those that fail
    authentication (so 401 floods and token guessing are throttled too)."""

    def __init__(
        self,
        redis: Redis,
        tenant_limit: int,
        user_limit: int,
        window_seconds: int,
        address_limit: int = 0,
    ) -> None:
        self.callers = Windows(
            redis, [Policy("tenant", tenant_limit), Policy("user", user_limit)], window_seconds
        )
        self.addresses = Windows(redis, [Policy("address", address_limit)], window_seconds)

    @property
    def policies(self) -> list[Policy]:
        return self.callers.policies

    async def check(self, tenant: str, user: str) -> Decision:
        # Length-prefixed so no tenant/user pair can collide with another.
        keys = [
            f"gw:rl:t:{len(tenant)}:{tenant}"
            if p.name == "tenant"
            else f"gw:rl:u:{len(tenant)}:{tenant}:{user}"
            for p in self.callers.policies
        ]
        return await self.callers.check(keys)

    async def check_address(self, address: str) -> Decision:
        return await self.addresses.check([f"gw:rl:a:{address}"])


class Blocked:
    """Client addresses over their limit, until when (monotonic), in this process; bounded."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._until: dict[str, float] = {}

    def __bool__(self) -> bool:
        """Whether any address is (or was, until its next look-up) blocked."""
        return bool(self._until)

    def retry_after(self, address: str) -> int:
        """Seconds left of the block (0: not blocked)."""
        until = self._until.get(address)
        if until is None:
            return 0
        left = until - time.monotonic()
        if left <= 0:
            del self._until[address]
            return 0
        return max(1, math.ceil(left))

    def add(self, address: str, seconds: int) -> None:
        self._until.pop(address, None)
        if len(self._until) >= self.size:
            self._until.pop(next(iter(self._until)))  # the oldest block goes first
        self._until[address] = time.monotonic() + seconds
