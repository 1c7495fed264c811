"""Balanced gRPC against real leads API processes (replicas sharing one database).

Each replica serves its own `/metrics`, whose `grpc_server_handled_total` tells which
replica answered what. Replicas are separate processes so that one can be frozen and
killed like a lost machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy.local.infra import free_port, port_open, wait_port
from kit.grpc.balancing import TargetError, channel_target, retry_plan, service_config
from kit.grpc.client import channel
from salesops.leads.v1 import leads_service_pb2 as pb
from salesops.leads.v1 import leads_service_pb2_grpc
from tests.leads.conftest import token
from tests.leads.helpers import hot_lead

ROOT = Path(__file__).resolve().parents[2]
LEADS = "salesops.leads.v1.LeadsService"

pytestmark = pytest.mark.slow


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by name from a process's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def handled(metrics_port: int, method: str, code: str | None = None) -> float:
    return sum(
        value
        for labels, value in scrape(metrics_port).get("grpc_server_handled_total", [])
        if labels.get("grpc_method") == method and (code is None or labels.get("grpc_code") == code)
    )


@dataclass
class Replica:
    proc: subprocess.Popen[bytes]
    port: int
    metrics_port: int

    def handled(self, method: str, code: str | None = None) -> float:
        return handled(self.metrics_port, method, code)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen replica must be able to die
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class Replicas:
    var_dir: Path
    redis_url: str
    started: list[Replica] = field(default_factory=list)

    def start(self, port: int | None = None, **env: str) -> Replica:
        port = port or free_port()
        metrics_port = free_port(exclude={port})
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("SALESOPS_", "REDIS_URL"))}
        environ.update(
            SALESOPS_VAR_DIR=str(self.var_dir),  # one SQLite file for every replica
            SALESOPS_LEADS_PORT=str(port),
            SALESOPS_METRICS_PORT=str(metrics_port),
            SALESOPS_REDIS_URL=self.redis_url,
            SALESOPS_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",  # the API answers without it
            SALESOPS_LOG_LEVEL="WARNING",
            **env,
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.leads", "--role", "api"], cwd=ROOT, env=environ
        )
        replica = Replica(proc, port, metrics_port)
        self.started.append(replica)
        wait_port("127.0.0.1", metrics_port, 90, proc)  # type: ignore[arg-type]
        wait_port("127.0.0.1", port, 90, proc)  # type: ignore[arg-type]
        return replica


@pytest.fixture
def replicas(tmp_path: Path, redis_url: str) -> Iterator[Replicas]:
    found = Replicas(tmp_path, redis_url)
    try:
        yield found
    finally:
        for replica in found.started:
            replica.stop()


def metadata(user: str = "rep-b1") -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token(user)}"),)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


# -- configuration, derived from the contracts ----------------------------------------------


def test_targets() -> None:
    assert channel_target("leads:50051") == "leads:50051"
    assert channel_target("dns:///leads-headless.ns.svc.cluster.local:50051").startswith("dns:///")
    assert channel_target("ipv4:10.0.0.1:50051,10.0.0.2:50051") == "ipv4:10.0.0.1:50051,10.0.0.2:50051"
    assert channel_target("10.0.0.1:50051, 10.0.0.2:50051") == "ipv4:10.0.0.1:50051,10.0.0.2:50051"
    assert channel_target("[::1]:1,[::2]:2") == "ipv6:[::1]:1,[::2]:2"
    for bad in ("", "a:1,b:2", "10.0.0.1:1,[::1]:2", "10.0.0.1,10.0.0.2:1"):
        with pytest.raises(TargetError):
            channel_target(bad)


def test_retry_plan_follows_the_contracts() -> None:
    plan = retry_plan()
    assert f"/{LEADS}/GetLead" in plan.read_only and f"/{LEADS}/ListLeads" in plan.read_only
    assert "/salesops.pipeline.v1.PipelineService/SummarizeLostReasons" in plan.read_only
    # A create with a client-made id is retried only when the call carries it.
    assert plan.client_key[f"/{LEADS}/CreateLead"] == ("lead", "lead_id")
    assert plan.client_key["/salesops.notify.v1.NotifyService/ResendDelivery"] == ("request_id",)
    for write in ("UpdateLead", "ImportLeads", "AssignLead"):
        path = f"/{LEADS}/{write}"
        assert path not in plan.read_only and path not in plan.client_key
    config = json.loads(service_config())
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    (method_config,) = config["methodConfig"]
    assert method_config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    names = {(n["service"], n["method"]) for n in method_config["name"]}
    assert (LEADS, "GetLead") in names and (LEADS, "CreateLead") not in names


# -- real replicas ---------------------------------------------------------------------------


async def test_calls_spread_over_every_address(replicas: Replicas) -> None:
    servers = [replicas.start() for _ in range(3)]
    target = "ipv4:" + ",".join(f"127.0.0.1:{s.port}" for s in servers)
    async with channel(target) as ch:
        stub = leads_service_pb2_grpc.LeadsServiceStub(ch)

        async def list_once() -> None:
            await stub.ListLeads(pb.ListLeadsRequest(page_size=5), metadata=metadata(), timeout=30)

        async def every_replica_connected() -> bool:
            # Until a replica's connection is up, round_robin sends its share to the others.
            await list_once()
            return all(s.handled("ListLeads", "OK") > 0 for s in servers)

        await eventually(every_replica_connected)
        before = [s.handled("ListLeads", "OK") for s in servers]
        for _ in range(30):
            await list_once()
    counts = [s.handled("ListLeads", "OK") - b for s, b in zip(servers, before, strict=True)]
    assert sum(counts) == 30
    assert all(c >= 8 for c in counts), counts  # round_robin: each replica its share (10)


async def test_a_lost_replica_retries_only_what_is_safe(replicas: Replicas) -> None:
    """Replica A freezes with calls in flight, then dies (a machine lost mid-call).

    Reads and creates carrying the client's id are retried on B and succeed exactly once;
    creates without an id that A held fail with UNAVAILABLE and are not sent again.
    """
    a, b = replicas.start(), replicas.start()
    async with channel(f"ipv4:127.0.0.1:{a.port},127.0.0.1:{b.port}") as ch:
        stub = leads_service_pb2_grpc.LeadsServiceStub(ch)
        known = await stub.CreateLead(
            pb.CreateLeadRequest(lead=hot_lead("KNOWN", phone="13911112222", company="Known Ltd")),
            metadata=metadata(),
            timeout=30,
        )
        for _ in range(4):  # both connections up and in use
            await stub.GetLead(pb.GetLeadRequest(lead_id=known.lead.lead_id), metadata=metadata(), timeout=30)
        assert a.handled("GetLead") > 0 and b.handled("GetLead") > 0

        b_before = b.handled("GetLead") + b.handled("CreateLead")
        a.proc.send_signal(signal.SIGSTOP)
        n = 10
        keyed = [f"KEYED{i:02d}" for i in range(n)]
        calls: list[asyncio.Task[object]] = []
        for i in range(n):
            calls.append(
                asyncio.ensure_future(
                    stub.GetLead(
                        pb.GetLeadRequest(lead_id=known.lead.lead_id), metadata=metadata(), timeout=60
                    )
                )
            )
            calls.append(
                asyncio.ensure_future(
                    stub.CreateLead(
                        pb.CreateLeadRequest(
                            lead=hot_lead(keyed[i], phone=f"1370000{i:04d}", company=uuid4().hex)
                        ),
                        metadata=metadata(),
                        timeout=60,
                    )
                )
            )
            calls.append(
                asyncio.ensure_future(
                    stub.CreateLead(
                        pb.CreateLeadRequest(lead=hot_lead("", phone=f"1360000{i:04d}", company=uuid4().hex)),
                        metadata=metadata(),
                        timeout=60,
                    )
                )
            )

        async def b_answered_its_share() -> bool:
            done = sum(c.done() for c in calls)
            b_total = b.handled("GetLead") + b.handled("CreateLead")
            return 0 < done < len(calls) and b_total - b_before == done

        # Every call B got is answered; the rest wait on frozen A.
        await eventually(b_answered_its_share)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(30)
        results = await asyncio.gather(*calls, return_exceptions=True)

        reads, with_id, without_id = results[0::3], results[1::3], results[2::3]
        assert all(isinstance(r, pb.GetLeadResponse) for r in reads), reads
        assert all(isinstance(r, pb.CreateLeadResponse) for r in with_id), with_id
        created = (pb.INTAKE_OUTCOME_CREATED, pb.INTAKE_OUTCOME_CREATED_FLAGGED)
        answered = [r for r in with_id + without_id if isinstance(r, pb.CreateLeadResponse)]
        assert all(r.outcome in created and not r.replayed for r in answered), answered
        failed = [r for r in without_id if isinstance(r, grpc.aio.AioRpcError)]
        assert failed, "A held no create without an id: nothing showed the difference"
        assert all(r.code() == grpc.StatusCode.UNAVAILABLE for r in failed)
        # Each keyed lead exists once, under the client's id, created on B.
        for lead_id in keyed:
            got = await stub.GetLead(
                pb.GetLeadRequest(lead_id=lead_id), metadata=metadata("admin"), timeout=30
            )
            assert got.lead.lead_id == lead_id
        listed = await stub.ListLeads(
            pb.ListLeadsRequest(page_size=200), metadata=metadata("admin"), timeout=30
        )
        ids = [lead.lead_id for lead in listed.leads]
        assert len(ids) == len(set(ids))
        assert sum(i in keyed for i in ids) == n
        # The creates without an id that failed never reached a database.
        assert len(ids) == 1 + n + (n - len(failed))


async def test_max_connection_age_brings_a_later_replica_in(replicas: Replicas) -> None:
    """Behind one address (an L4 balancer, here SO_REUSEPORT), B started later gets calls once
    A's connections reach their maximum age and the client reconnects."""
    port = free_port()
    age = {
        "SALESOPS_GRPC_REUSE_PORT": "1",
        "SALESOPS_GRPC_MAX_CONNECTION_AGE_MS": "500",
        "SALESOPS_GRPC_MAX_CONNECTION_AGE_GRACE_MS": "2000",
    }
    a = replicas.start(port, **age)
    async with channel(f"127.0.0.1:{port}") as ch:
        stub = leads_service_pb2_grpc.LeadsServiceStub(ch)

        async def list_once() -> None:
            await stub.ListLeads(pb.ListLeadsRequest(page_size=1), metadata=metadata(), timeout=30)

        await list_once()
        assert a.handled("ListLeads", "OK") == 1
        b = replicas.start(port, **age)
        assert port_open("127.0.0.1", port)

        async def b_served() -> bool:
            await list_once()
            return b.handled("ListLeads", "OK") > 0

        await eventually(b_served, timeout=90)
        total = a.handled("ListLeads") + b.handled("ListLeads")
        assert (
            a.handled("ListLeads", "OK") + b.handled("ListLeads", "OK") == total
        )  # no call lost to a GOAWAY
