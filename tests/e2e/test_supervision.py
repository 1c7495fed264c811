"""A service killed in the middle of an intake load: the launcher restarts it, nothing is lost.

The real embedded stack (`make run`'s launcher on free ports, its own var/) takes
lead creations with client-made ids over gRPC, 8 in flight; after the first answers
the leads process is SIGKILLed. Then: the launcher restarted it (log line, status file,
/readyz details); every create that answered OK exists exactly once; the failed ones
succeed when retried with the same id, with no duplicate; every owned lead's assignment
notice is in the owner's inbox exactly once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from ulid import ULID

from salesops.common.v1 import types_pb2
from salesops.common.v1.types_pb2 import Money
from salesops.leads.v1 import enums_pb2, lead_pb2, leads_service_pb2, leads_service_pb2_grpc
from salesops.notify.v1 import inbox_pb2, notification_pb2, notify_service_pb2, notify_service_pb2_grpc
from tests.e2e.test_local_stack import _start, _stop, _wait_ready

pytestmark = [pytest.mark.slow]

LEADS = 240
IN_FLIGHT = 8
KILL_AFTER = 60  # answered creates before the kill
TAG = "supervision-load"
# Reconnect quickly once leads is back (gRPC's default back-off grows to minutes).
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]


def _lead(lead_id: str, i: int) -> lead_pb2.Lead:
    return lead_pb2.Lead(
        lead_id=lead_id,
        contact=lead_pb2.LeadContact(name=f"Supervised Tester {i}", phone=f"137{50_000_000 + i}"),
        company=lead_pb2.LeadCompany(name=f"Restart Proof Trading {i} Co."),
        source=lead_pb2.LeadSource(channel=enums_pb2.LEAD_CHANNEL_CALL_CENTER),
        region="east/shanghai",
        stated_budget=Money(amount_minor=50_000_000, currency="CNY"),
        tags=[TAG],
    )


def _md(tokens: dict[str, str], user: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {tokens[user]}"),)


async def _create(stub: Any, tokens: dict[str, str], lead_id: str, i: int, wait: bool = False) -> str:
    """One create; `wait`: a call not yet sent waits for leads to be back (as an intake client
    with a deadline does); a call in flight when leads dies fails."""
    try:
        reply = await stub.CreateLead(
            leads_service_pb2.CreateLeadRequest(lead=_lead(lead_id, i)),
            metadata=_md(tokens, "sup-a"),
            timeout=60,
            wait_for_ready=wait,
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() not in (grpc.StatusCode.UNAVAILABLE,):
            print(f"{lead_id}: {exc.code().name} {exc.details()}")
        return exc.code().name
    assert reply.intake_id == lead_id and not reply.lead_hidden
    assert reply.lead.lead_id == lead_id, "a create with a client-made id landed on another lead"
    return "OK"


async def _load(
    address: str, tokens: dict[str, str], ids: list[str], kill: Callable[[], None]
) -> dict[str, str]:
    results: dict[str, str] = {}
    todo = iter(enumerate(ids))
    killed = False
    killed_at, back_after = 0.0, [0.0]
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        stub = leads_service_pb2_grpc.LeadsServiceStub(channel)

        async def worker() -> None:
            nonlocal killed, killed_at
            for i, lead_id in todo:
                sent = time.monotonic()
                results[lead_id] = await _create(stub, tokens, lead_id, i, wait=True)
                if killed and sent > killed_at and results[lead_id] == "OK" and not back_after[0]:
                    back_after[0] = time.monotonic() - killed_at
                if not killed and sum(r == "OK" for r in results.values()) >= KILL_AFTER:
                    killed, killed_at = True, time.monotonic()
                    kill()

        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    print(f"\nfirst create answered OK {back_after[0]:.1f}s after the SIGKILL of leads")
    return results


async def _retry(
    address: str, tokens: dict[str, str], index: dict[str, int], ids: list[str], timeout: float
) -> dict[str, str]:
    """Retry with the same ids and the same leads until each answers OK (leads may still be starting)."""
    pending, seen = list(ids), dict.fromkeys(ids, "")
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        stub = leads_service_pb2_grpc.LeadsServiceStub(channel)
        while pending and time.monotonic() < deadline:
            answers = await asyncio.gather(
                *(_create(stub, tokens, lead_id, index[lead_id]) for lead_id in pending)
            )
            seen.update(zip(pending, answers, strict=True))
            pending = [lead_id for lead_id, answer in zip(pending, answers, strict=True) if answer != "OK"]
            if pending:
                await asyncio.sleep(0.5)  # pacing between rounds of a poll, not a wait for an event
    assert not pending, f"retries still failing after {timeout:.0f}s: {Counter(seen[i] for i in pending)}"
    return seen


async def _tagged_leads(address: str, tokens: dict[str, str]) -> list[lead_pb2.Lead]:
    found: list[lead_pb2.Lead] = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = leads_service_pb2_grpc.LeadsServiceStub(channel)
        token = ""
        while True:
            page = await stub.ListLeads(
                leads_service_pb2.ListLeadsRequest(
                    page_size=500, page_token=token, filter=leads_service_pb2.LeadFilter(tags=[TAG])
                ),
                metadata=_md(tokens, "admin"),
                timeout=30,
            )
            found += page.leads
            token = page.next_page_token
            if not token:
                return found


async def _assignment_notices(
    address: str, tokens: dict[str, str], owners: set[str]
) -> Counter[tuple[str, str]]:
    """(owner, lead id) of every LEAD_ASSIGNED item in the owners' inboxes."""
    seen: Counter[tuple[str, str]] = Counter()
    states = [
        inbox_pb2.INBOX_ITEM_STATE_OPEN,
        inbox_pb2.INBOX_ITEM_STATE_RESOLVED,
        inbox_pb2.INBOX_ITEM_STATE_EXPIRED,
    ]
    async with grpc.aio.insecure_channel(address) as channel:
        stub = notify_service_pb2_grpc.NotifyServiceStub(channel)
        for owner in sorted(owners):
            token = ""
            while True:
                page = await stub.ListInboxItems(
                    notify_service_pb2.ListInboxItemsRequest(
                        page_size=500,
                        page_token=token,
                        filter=notify_service_pb2.InboxFilter(
                            categories=[notification_pb2.NOTIFICATION_CATEGORY_LEAD_ASSIGNED],
                            states=states,
                            subject=types_pb2.ResourceRef(service="leads", kind="lead"),
                        ),
                    ),
                    metadata=_md(tokens, owner),
                    timeout=30,
                )
                seen.update((owner, item.subject.id) for item in page.items)
                token = page.next_page_token
                if not token:
                    break
    return seen


def _until(what: str, probe: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _supervised(var: Path) -> dict[str, Any]:
    return dict(json.loads((var / "supervisor.json").read_text())["children"])


def test_a_service_killed_mid_load_is_restarted_and_loses_nothing(tmp_path: Path) -> None:
    var = tmp_path / "var"
    proc = _start(var, tmp_path / "tokens.json")
    out = ""
    try:
        _wait_ready(proc)
        info = json.loads((tmp_path / "tokens.json").read_text())
        gateway, tokens, services = str(info["gateway"]), info["tokens"], info["services"]
        before = _supervised(var)["leads"]
        assert (before["state"], before["restarts"]) == ("up", 0)
        victim = int(before["pid"])

        ids = [str(ULID()) for _ in range(LEADS)]
        results = asyncio.run(_load(services["leads"], tokens, ids, lambda: os.kill(victim, signal.SIGKILL)))
        failed = [lead_id for lead_id in ids if results[lead_id] != "OK"]
        answered = [lead_id for lead_id in ids if results[lead_id] == "OK"]
        print(
            f"\nintake under a SIGKILL of leads: {len(answered)} OK, {len(failed)} failed {Counter(results.values())}"
        )
        assert failed, "the kill must cut creates in flight"
        assert len(answered) > KILL_AFTER + IN_FLIGHT, "creates must go on after the restart"

        # The launcher restarted leads (and nothing else), and says so in its status and /readyz.
        after = _until(
            "leads to be restarted",
            lambda: (c := _supervised(var)["leads"])["restarts"] == 1 and c["state"] == "up" and c,
            120,
        )
        assert after["last_exit"] == "killed by SIGKILL" and after["pid"] != victim
        assert all(c["restarts"] == 0 for n, c in _supervised(var).items() if n != "leads")

        def ready() -> dict[str, Any] | None:
            reply = httpx.get(f"{gateway}/readyz", timeout=10)
            return reply.json() if reply.status_code == 200 else None

        body = _until("/readyz to answer ready again", ready, 120)
        leads = body["supervised"]["leads"]
        assert (leads["state"], leads["restarts"], leads["last_exit"]) == ("up", 1, "killed by SIGKILL")

        # Failed creates succeed when retried with the same id; answered ones replay, never duplicate.
        index = {lead_id: i for i, lead_id in enumerate(ids)}
        asyncio.run(_retry(services["leads"], tokens, index, failed, 120))
        asyncio.run(_retry(services["leads"], tokens, index, answered[:20], 60))
        stored = asyncio.run(_tagged_leads(services["leads"], tokens))
        counts = Counter(lead.lead_id for lead in stored)
        assert set(counts) == set(ids), f"missing {set(ids) - set(counts)}, extra {set(counts) - set(ids)}"
        assert max(counts.values()) == 1, [i for i, n in counts.items() if n > 1]

        # Every assignment notice reached its owner's inbox, exactly once.
        owned = {lead.lead_id: lead.owner_user_id for lead in stored if lead.owner_user_id}
        assert len(owned) >= LEADS // 2, f"only {len(owned)} of {LEADS} leads were routed to an owner"
        expected = {(owner, lead_id) for lead_id, owner in owned.items()}
        owners = set(owned.values())
        assert owners <= set(tokens), f"owners without a demo token: {owners - set(tokens)}"

        def all_arrived() -> Counter[tuple[str, str]] | None:
            seen = asyncio.run(_assignment_notices(services["notify"], tokens, owners))
            return seen if expected <= set(seen) else None

        seen = _until("every assignment notice in the owners' inboxes", all_arrived, 180)
        ours = {key: n for key, n in seen.items() if key[1] in owned}
        assert set(ours) == expected  # none to the wrong owner
        assert set(ours.values()) == {1}, {k: n for k, n in ours.items() if n != 1}
    finally:
        if proc.poll() is None:
            out = _stop(proc)
    # One clear line in the launcher's output: which child, how it ended, which restart, when.
    assert f"supervisor: leads (pid {victim}) died: killed by SIGKILL" in out
    assert "restart #1 in 0.5s" in out
