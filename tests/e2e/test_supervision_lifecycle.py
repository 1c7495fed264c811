"""Children end with the launcher: a SIGKILLed launcher leaves no process and no port behind,
so the next `make run` on the same var/ starts; SIGHUP stops the stack as Ctrl-C does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local.infra import port_open
from tests.e2e.test_local_stack import ROOT, _start, _wait_ready

pytestmark = [pytest.mark.slow]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _port(address: str) -> int:
    """127.0.0.1:7233, http://127.0.0.1:8080 or redis://127.0.0.1:6390/0 -> the port."""
    return int(address.split("://")[-1].split("/")[0].rsplit(":", 1)[1])


def _children(var: Path) -> dict[str, Any]:
    return dict(json.loads((var / "supervisor.json").read_text())["children"])


def _gone(pids: list[int], port_numbers: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if _alive(pid)]
        held = [port for port in port_numbers if port_open("127.0.0.1", port)]
        if not alive and not held:
            return
        time.sleep(0.25)
    raise AssertionError(f"after {timeout:.0f}s still alive: {alive}, ports still open: {held}")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the parent-death signal is Linux's")
def test_killing_the_launcher_ends_every_child_and_frees_every_port(tmp_path: Path) -> None:
    var, tokens = tmp_path / "var", tmp_path / "tokens.json"
    proc = _start(var, tokens)
    try:
        _wait_ready(proc)
        children = _children(var)
        assert {"redis", "temporal", "leads", "notify", "gateway"} <= set(children)
        pids = [int(c["pid"]) for c in children.values()]
        port_numbers = [_port(c["address"]) for c in children.values() if c["address"]]
        assert all(_alive(pid) for pid in pids)
        assert all(port_open("127.0.0.1", port) for port in port_numbers)
    finally:
        proc.kill()  # SIGKILL: no handler runs, no orderly stop
        proc.communicate(timeout=30)
    _gone(pids, port_numbers, timeout=90)

    # The next start on the same var/ comes up (nothing holds its files or ports), and shows
    # the supervised children in /readyz; SIGHUP then stops it in order.
    proc = _start(var, tokens)
    try:
        _wait_ready(proc)
        gateway = json.loads(tokens.read_text())["gateway"]
        body = httpx.get(f"{gateway}/readyz", timeout=10).json()
        assert body["ready"] is True, body
        assert {c["state"] for c in body["supervised"].values()} == {"up"}
        assert {c["restarts"] for c in body["supervised"].values()} == {0}
        pids = [int(c["pid"]) for c in _children(var).values()]
        proc.send_signal(signal.SIGHUP)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "stopping..." in out and "stopped." in out
    assert not [pid for pid in pids if _alive(pid)]
    assert {c["state"] for c in _children(var).values()} == {"stopped"}


def test_sigint_stops_a_launcher_started_with_sigint_ignored(tmp_path: Path) -> None:
    """A `&` job of a shell without job control starts with SIGINT ignored, and Python keeps it
    ignored: the launcher sets its own handler, so `kill -INT` (and Ctrl-C) still stop the stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SALESOPS_", "REDIS_URL"))}
    env["SALESOPS_DEMO_HISTORY"] = "0"
    cmd = [sys.executable, "-m", "deploy.local", "--var", str(tmp_path / "var"), "--auto-ports"]
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("salesops: starting the local stack")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert proc.returncode == 0, out
    assert "stopping..." in out and "stopped." in out
