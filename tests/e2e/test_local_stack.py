"""Smoke: start the whole local stack exactly as `make run` does and check every component.

Runs the launcher as a child process on free ports with its own var/ (so it
never touches a developer's stack), waits for READY, checks readiness through
the gateway and an authenticated call on every service with a printed demo
token, then stops it with Ctrl-C and expects a clean exit. A second start on
the same var/ must come up again on the state the first one left.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import httpx
import pytest

from kit.config import SERVICES
from salesops.common.v1 import diagnostics_pb2, diagnostics_pb2_grpc

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _start(
    var: Path, tokens: Path, extra_env: dict[str, str] | None = None, *, history: bool = False
) -> subprocess.Popen[str]:
    """The launcher as `make run` starts it. `history`: also write the backdated demo history
    behind READY (a minute or more of CPU on SQLite); only the tests that look at it ask for it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SALESOPS_", "REDIS_URL"))}
    env["SALESOPS_LOG_FORMAT"] = "json"
    if not history:
        env["SALESOPS_DEMO_HISTORY"] = "0"
    env.update(extra_env or {})
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deploy.local",
            "--var",
            str(var),
            "--auto-ports",
            "--tokens-file",
            str(tokens),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _wait_ready(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[str, float]:
    """The output up to READY. The limit is generous: under the whole suite on two cores a start
    has taken over a minute; how fast the stack starts is not this test's question."""
    assert proc.stdout is not None
    start = time.monotonic()
    lines: list[str] = []
    while time.monotonic() - start < timeout:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        lines.append(line)
        if line.startswith("READY"):
            return "".join(lines), time.monotonic() - start
    proc.kill()
    proc.wait(timeout=30)  # reaped: the caller's `finally` sees it gone and this error is the one reported
    raise AssertionError("stack did not become ready:\n" + "".join(lines[-60:]))


def _wait_line(proc: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    """The first later output line starting with `prefix` (read by a thread: readline blocks)."""
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout

    def read() -> None:
        for line in stdout:
            lines.put(line)
            if line.startswith(prefix):
                return

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line.startswith(prefix):
            return line.strip()
    raise AssertionError(f"no '{prefix}' line within {timeout:.0f}s")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 0, out
    return out


def _check(info: dict[str, object]) -> None:
    gateway = str(info["gateway"])
    assert httpx.get(f"{gateway}/healthz", timeout=5).status_code == 200
    ready = httpx.get(f"{gateway}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["services"]) == set(SERVICES)
    tokens: dict[str, str] = info["tokens"]  # type: ignore[assignment]
    services: dict[str, str] = info["services"]  # type: ignore[assignment]
    assert set(services) == set(SERVICES)
    for name, address in services.items():
        with grpc.insecure_channel(address) as channel:
            stub = diagnostics_pb2_grpc.DiagnosticsServiceStub(channel)
            who = stub.WhoAmI(
                diagnostics_pb2.WhoAmIRequest(),
                metadata=(("authorization", f"Bearer {tokens['sup-a']}"),),
                timeout=5,
            )
            assert (who.user_id, who.tenant, who.org, who.service) == ("sup-a", "demo", "east/team-a", name)


# Two starts (up to 300 s each), the history (up to 600 s) and two stops: pytest's default 300 s
# is shorter than the waits inside, which are the test's own bounds (a run under heavy load hit it).
@pytest.mark.timeout(1500)
def test_make_run_stack_comes_up_healthy_and_stops_cleanly(tmp_path: Path) -> None:
    var, tokens = tmp_path / "var", tmp_path / "tokens.json"
    proc = _start(var, tokens, history=True)
    try:
        output, _ = _wait_ready(proc)
        for user in ("admin", "director-east", "sup-a", "sup-b", "rep-a1", "rep-a4", "rep-b1", "rep-b4"):
            assert user in output
        assert "temporal UI" in output
        _check(json.loads(tokens.read_text()))
        # The backdated demo history is written behind READY, and finishes.
        assert _wait_line(proc, "demo history:", 600) == "demo history: ready"
    finally:
        if proc.poll() is None:
            out = _stop(proc)
            assert "stopped." in out
    for name in SERVICES:
        assert (var / f"{name}.db").exists()
    # A second run reuses var/ (SQLite files, Temporal's database, Redis AOF).
    proc = _start(var, tokens, history=True)
    try:
        _wait_ready(proc)
        _check(json.loads(tokens.read_text()))
    finally:
        if proc.poll() is None:
            _stop(proc)
