"""Every process serves /metrics, and the series move when calls are made.

Real processes: two leads API replicas and a leads worker on one database, a real Temporal
dev server and Redis, and the gateway balancing over both replicas. Calls go through the
gateway over REST; the test scrapes each process before and after.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local.infra import free_port, wait_port
from tests.gateway.conftest import auth
from tests.unit.test_grpc_balancing import scrape

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

Samples = dict[str, list[tuple[dict[str, str], float]]]


def value(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for found, v in samples.get(name, []) if all(found.get(k) == x for k, x in labels.items()))


def eventually(check: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


class Stack:
    def __init__(self, tmp_path: Path, redis_url: str, temporal_address: str) -> None:
        self.base = {k: v for k, v in os.environ.items() if not k.startswith(("SALESOPS_", "REDIS_URL"))}
        self.base.update(
            SALESOPS_VAR_DIR=str(tmp_path),
            SALESOPS_REDIS_URL=redis_url,
            SALESOPS_TEMPORAL_ADDRESS=temporal_address,
            SALESOPS_LOG_LEVEL="WARNING",
            SALESOPS_METRICS_EVENTS_INTERVAL_SECONDS="0.5",
        )
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], port_var: str | None = None, **env: str) -> tuple[int, int]:
        """Start a process; returns (its serving port or 0, its metrics port) once both listen."""
        port = free_port() if port_var else 0
        metrics_port = int(env.get("SALESOPS_METRICS_PORT") or free_port(exclude={port}))
        environ = {**self.base, "SALESOPS_METRICS_PORT": str(metrics_port), **env}
        if port_var:
            environ[port_var] = str(port)
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=environ)
        self.procs.append(proc)
        wait_port("127.0.0.1", metrics_port, 120, proc)  # type: ignore[arg-type]
        if port:
            wait_port("127.0.0.1", port, 120, proc)  # type: ignore[arg-type]
        return port, metrics_port

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def stack(tmp_path: Path, redis_url: str, temporal_dev: Any) -> Iterator[Stack]:
    found = Stack(tmp_path, redis_url, temporal_dev.client.service_client.config.target_host)
    try:
        yield found
    finally:
        found.stop()


def test_series_move_when_calls_are_made(stack: Stack) -> None:
    api_a, metrics_a = stack.start(["-m", "services.leads", "--role", "api"], "SALESOPS_LEADS_PORT")
    api_b, metrics_b = stack.start(["-m", "services.leads", "--role", "api"], "SALESOPS_LEADS_PORT")
    _, metrics_worker = stack.start(["-m", "services.leads", "--role", "worker"])
    gw, metrics_gw = stack.start(
        ["-m", "gateway"],
        "SALESOPS_GATEWAY_PORT",
        SALESOPS_LEADS_ADDR=f"ipv4:127.0.0.1:{api_a},127.0.0.1:{api_b}",
    )
    # A metrics port another process holds: the replica logs it and serves without metrics.
    taken, _ = stack.start(
        ["-m", "services.leads", "--role", "api"], "SALESOPS_LEADS_PORT", SALESOPS_METRICS_PORT=str(metrics_a)
    )
    assert stack.procs[-1].poll() is None and taken

    with httpx.Client(base_url=f"http://127.0.0.1:{gw}", timeout=30) as client:

        def both_replicas_connected() -> bool:
            # Until the gateway's connection to a replica is up, round_robin skips it.
            assert client.get("/v1/leads", headers=auth("sup-a")).status_code == 200
            return all(
                value(scrape(p), "grpc_server_handled_total", grpc_method="ListLeads") > 0
                for p in (metrics_a, metrics_b)
            )

        eventually(both_replicas_connected)
        before = {p: scrape(p) for p in (metrics_a, metrics_b, metrics_gw)}
        lead_id = f"01METRICS{uuid.uuid4().hex[:12].upper()}"
        body = {
            "leadId": lead_id,
            "contact": {"name": "Li Na", "phone": "139 1234 0001"},
            "company": {"name": "Metrics Test Ltd"},
            "source": {"channel": "LEAD_CHANNEL_CALL_CENTER"},
            "region": "east/shanghai",
        }
        created = client.post("/v1/leads", json=body, headers=auth("sup-a"))
        assert created.status_code == 200, created.text
        for _ in range(6):
            assert client.get("/v1/leads", headers=auth("sup-a")).status_code == 200
        assert client.get(f"/v1/leads/{lead_id}", headers=auth("sup-a")).status_code == 200
        assert client.get("/v1/leads/NO-SUCH-LEAD", headers=auth("sup-a")).status_code == 404
        assert client.get("/v1/nothing/here", headers=auth("sup-a")).status_code == 404
    after = {p: scrape(p) for p in (metrics_a, metrics_b, metrics_gw)}

    # Gateway: by route template (never the id) and status code.
    g0, g1 = before[metrics_gw], after[metrics_gw]
    requests = "salesops_gateway_requests_total"
    assert (
        value(g1, requests, route="/v1/leads", method="POST", code="200")
        - value(g0, requests, route="/v1/leads", method="POST", code="200")
        == 1
    )
    assert (
        value(g1, requests, route="/v1/leads", method="GET", code="200")
        - value(g0, requests, route="/v1/leads", method="GET", code="200")
        == 6
    )
    assert value(g1, requests, route="/v1/leads/{lead_id}", code="200") == 1
    assert value(g1, requests, route="/v1/leads/{lead_id}", code="404") == 1
    assert value(g1, requests, route="unmatched", code="404") == 1
    assert not any(lead_id in str(labels) for labels, _ in g1[requests])
    assert value(g1, "salesops_gateway_request_duration_seconds_count", route="/v1/leads") >= 7

    # gRPC servers: both replicas served ListLeads (balanced), the NOT_FOUND counted as such.
    def moved(method: str, code: str) -> float:
        return sum(
            value(after[p], "grpc_server_handled_total", grpc_method=method, grpc_code=code)
            - value(before[p], "grpc_server_handled_total", grpc_method=method, grpc_code=code)
            for p in (metrics_a, metrics_b)
        )

    assert (
        moved("CreateLead", "OK") == 1 and moved("GetLead", "OK") == 1 and moved("GetLead", "NOT_FOUND") == 1
    )
    assert moved("ListLeads", "OK") == 6
    for p in (metrics_a, metrics_b):
        assert value(after[p], "grpc_server_handled_total", grpc_method="ListLeads") > value(
            before[p], "grpc_server_handled_total", grpc_method="ListLeads"
        )
        assert value(after[p], "grpc_server_handling_seconds_count", grpc_method="ListLeads") > 0

    # Event gauges: the API's outbox drains to 0 once the relay published the lead's events.
    def outbox_drained() -> bool:
        samples = scrape(metrics_a)
        return "salesops_outbox_backlog" in samples and value(samples, "salesops_outbox_backlog") == 0

    eventually(outbox_drained)
    samples = scrape(metrics_a)
    assert {labels["stream"] for labels, _ in samples["salesops_outbox_backlog"]} == {"salesops:events:leads"}

    # The worker's consumer group (leads-watch, over the leads stream) reads everything published.
    def watch_caught_up() -> bool:
        found = scrape(metrics_worker)
        lag = found.get("salesops_stream_consumer_lag", [])
        return (
            [labels for labels, _ in lag] == [{"stream": "salesops:events:leads", "group": "leads-watch"}]
            and value(found, "salesops_stream_consumer_lag") == 0
            and value(found, "salesops_stream_consumer_pending") == 0
            and found.get("salesops_dead_letters") == [({"group": "leads-watch"}, 0.0)]
        )

    eventually(watch_caught_up)

    # The worker: the Temporal SDK's own metrics, bridged into its endpoint.
    def sdk_metrics() -> bool:
        found = scrape(metrics_worker)
        return any(name.startswith("temporal_") and "poll" in name for name in found)

    eventually(sdk_metrics)
    worker = scrape(metrics_worker)
    assert any(
        labels.get("task_queue") == "salesops-leads"
        for name, rows in worker.items()
        if name.startswith("temporal_")
        for labels, _ in rows
    )
