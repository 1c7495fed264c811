"""The bounded load: lead creations with client-made ids through the gateway's REST, N in flight,
with an action (the host kill) fired once a given number of them have answered."""

from __future__ import annotations

import asyncio
import random
import string
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

CLIENT_TIMEOUT = (
    60.0  # longer than the gateway's own gRPC deadline (30 s here): its answer, not ours, decides
)


@dataclass
class Outcome:
    lead_id: str
    started: float  # monotonic
    ended: float
    status: int  # HTTP status; 0 when no answer came (connection error, timeout)
    detail: str = ""
    owner: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


def lead_body(lead_id: str, index: int) -> dict[str, object]:
    """An A lead (budget, call centre, east) with its own phone and an unrelated company name, so
    dedupe never merges or flags two of them: each create is one lead."""
    rnd = random.Random(index)
    company = "".join(rnd.choices(string.ascii_lowercase, k=12)).capitalize() + " Trading"
    return {
        "leadId": lead_id,
        "contact": {"name": f"Failover Contact {index}", "phone": f"1390{index:07d}"},
        "company": {"name": company},
        "source": {"channel": "LEAD_CHANNEL_CALL_CENTER"},
        "region": "east/shanghai",
        "statedBudget": {"amountMinor": "50000000", "currency": "CNY"},
    }


async def create(client: httpx.AsyncClient, token: str, lead_id: str, index: int) -> Outcome:
    started = time.monotonic()
    try:
        reply = await client.post(
            "/v1/leads", json=lead_body(lead_id, index), headers={"Authorization": f"Bearer {token}"}
        )
    except httpx.HTTPError as exc:
        return Outcome(lead_id, started, time.monotonic(), 0, f"{type(exc).__name__}: {exc}")
    ended = time.monotonic()
    if reply.status_code != 200:
        return Outcome(lead_id, started, ended, reply.status_code, reply.text[:300])
    lead = reply.json().get("lead", {})
    if lead.get("leadId") != lead_id:
        return Outcome(lead_id, started, ended, -1, f"answered another lead: {reply.text[:300]}")
    return Outcome(lead_id, started, ended, 200, owner=str(lead.get("ownerUserId", "")))


@dataclass
class LoadResult:
    outcomes: dict[str, Outcome]
    action_at: float  # monotonic time the action started (0: never fired)
    started: float
    ended: float


async def run_load(
    base_url: str,
    token: str,
    ids: list[str],
    in_flight: int,
    fire_after: int,
    action: Callable[[], float],
) -> LoadResult:
    """Create every lead of `ids` once, `in_flight` at a time; once `fire_after` have answered, run
    `action` in a thread (it returns the monotonic time of its decisive step) while the load goes on."""
    outcomes: dict[str, Outcome] = {}
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for index, lead_id in enumerate(ids):
        queue.put_nowait((index, lead_id))
    fired: asyncio.Future[float] | None = None
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(base_url=base_url, timeout=CLIENT_TIMEOUT, limits=limits) as client:

        async def worker() -> None:
            nonlocal fired
            while not queue.empty():
                index, lead_id = queue.get_nowait()
                outcomes[lead_id] = await create(client, token, lead_id, index)
                if fired is None and len(outcomes) >= fire_after:
                    fired = asyncio.ensure_future(asyncio.to_thread(action))

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        ended = time.monotonic()
        action_at = await fired if fired is not None else 0.0
    return LoadResult(outcomes, action_at, started, ended)


async def retry_failed(
    base_url: str, token: str, ids: list[str], index_of: dict[str, int], timeout: float
) -> dict[str, Outcome]:
    """Retry each failed create with the same id until it answers 200 (or `timeout` passes)."""
    results: dict[str, Outcome] = {}
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base_url, timeout=CLIENT_TIMEOUT) as client:
        for lead_id in ids:
            while True:
                outcome = await create(client, token, lead_id, index_of[lead_id])
                results[lead_id] = outcome
                if outcome.ok or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
    return results
