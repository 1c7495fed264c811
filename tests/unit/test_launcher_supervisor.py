"""The launcher's supervisor on real processes: restarts with capped back-off, the loud
crash-loop report, fail-fast before READY, children that die with their parent, the
status file the gateway reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deploy.local.supervisor import ChildSpec, RestartPolicy, Supervisor, describe_exit
from gateway.supervision import STATUS_ENV, status_path, supervised_children

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
CRASHER = [sys.executable, "-c", "import sys; print('boom: bad config'); sys.exit(3)"]


def _until(what: str, probe: Callable[[], object], timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture
def lines() -> list[str]:
    return []


@pytest.fixture
def supervisor(tmp_path: Path, lines: list[str]) -> Iterator[Supervisor]:
    policy = RestartPolicy(base_delay=0.1, max_delay=0.4, stable_after=60.0, crash_loop_after=3)
    sup = Supervisor(tmp_path / "supervisor.json", policy, lines.append)
    yield sup
    sup.stop(timeout=5)


def test_policy_doubles_from_the_base_and_stops_at_the_cap() -> None:
    policy = RestartPolicy(base_delay=0.5, max_delay=30.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 7, 8, 50)] == [0.5, 1.0, 2.0, 4.0, 30.0, 30.0, 30.0]


def test_exit_descriptions_name_the_signal() -> None:
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(3) == "exit code 3"


def test_a_killed_child_is_restarted_and_the_status_file_says_so(
    supervisor: Supervisor, tmp_path: Path, lines: list[str]
) -> None:
    child = supervisor.start(ChildSpec("leads", SLEEPER, "127.0.0.1:1", log_path=tmp_path / "leads.log"))
    supervisor.arm()
    first = child.proc.pid
    os.kill(first, signal.SIGKILL)

    def restarted() -> bool:
        supervisor.poll()
        return child.state == "up" and child.proc.pid != first

    _until("the restart", restarted)
    assert _alive(child.proc.pid) and not _alive(first)
    crash = next(line for line in lines if "died" in line)
    assert f"leads (pid {first}) died: killed by SIGKILL" in crash
    assert "restart #1 in 0.1s" in crash
    status = json.loads((tmp_path / "supervisor.json").read_text())
    leads = status["children"]["leads"]
    assert (leads["state"], leads["restarts"], leads["last_exit"]) == ("up", 1, "killed by SIGKILL")
    assert leads["pid"] == child.proc.pid and status["supervising"] is True

    # The gateway's reader (embedded mode) shows what an operator needs, no command lines.
    os.environ[STATUS_ENV] = str(tmp_path / "supervisor.json")
    shown = supervised_children(status_path())
    assert shown is not None
    assert shown["leads"]["restarts"] == 1 and shown["leads"]["state"] == "up"
    assert "cmd" not in shown["leads"]


def test_a_child_crashing_at_once_backs_off_to_the_cap_and_is_reported_loudly(
    supervisor: Supervisor, tmp_path: Path, lines: list[str]
) -> None:
    log = tmp_path / "pipeline.log"
    child = supervisor.start(ChildSpec("pipeline", CRASHER, log_path=log))
    supervisor.arm()
    started = time.monotonic()

    def five_restarts() -> bool:
        supervisor.poll()
        return child.restarts >= 5

    _until("five restarts", five_restarts)
    took = time.monotonic() - started
    delays = [line.rsplit(" in ", 1)[1] for line in lines if "died" in line]
    assert delays[:5] == ["0.1s", "0.2s", "0.4s", "0.4s", "0.4s"]
    assert took >= 0.1 + 0.2 + 0.4 + 0.4 - 0.05  # no hot loop: every restart waited its delay
    loud = [line for line in lines if "crash-looping" in line]
    assert len(loud) == 1, lines  # said once, when the streak reached the threshold
    assert "pipeline is crash-looping: 3 crashes in a row" in loud[0]
    assert "boom: bad config" in loud[0]  # with the end of its log
    assert json.loads((tmp_path / "supervisor.json").read_text())["children"]["pipeline"]["crash_looping"]


def test_before_ready_an_exit_fails_the_start_with_the_log_tail(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    child = supervisor.start(ChildSpec("notify", CRASHER, log_path=tmp_path / "notify.log"))
    child.proc.wait(timeout=30)
    with pytest.raises(RuntimeError, match=r"(?s)notify exited with 3 \(exit code 3\).*boom: bad config"):
        supervisor.poll()
    assert child.restarts == 0


def test_stop_ends_every_tier_and_marks_them_stopped(supervisor: Supervisor, tmp_path: Path) -> None:
    gateway = supervisor.start(ChildSpec("gateway", SLEEPER, tier=2))
    redis = supervisor.start(ChildSpec("redis", SLEEPER, tier=0))
    supervisor.arm()
    supervisor.stop(timeout=10)
    assert gateway.proc.returncode == -signal.SIGTERM and redis.proc.returncode == -signal.SIGTERM
    status = json.loads((tmp_path / "supervisor.json").read_text())
    assert {c["state"] for c in status["children"].values()} == {"stopped"}
    supervisor.poll()  # a stopped child is not restarted
    assert gateway.restarts == 0


PARENT = """
import sys, time
from pathlib import Path
from deploy.local.supervisor import ChildSpec, Supervisor
sup = Supervisor(Path(sys.argv[1]))
child = sup.start(ChildSpec("leads", [sys.executable, "-c", "import time; time.sleep(120)"]))
print(child.proc.pid, flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_end_when_their_launcher_is_killed(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "s.json")],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    assert _alive(pid)
    parent.kill()
    parent.wait(timeout=30)
    _until("the child to end with its parent", lambda: not _alive(pid), timeout=30)


def test_the_gateway_reads_no_launcher_file_in_production(tmp_path: Path) -> None:
    path = tmp_path / "supervisor.json"
    path.write_text(json.dumps({"children": {"leads": {"state": "restarting", "restarts": 2}}}))
    os.environ[STATUS_ENV] = str(path)
    assert supervised_children(status_path()) == {"leads": {"state": "restarting", "restarts": 2}}
    os.environ["SALESOPS_ENV"] = "production"  # Kubernetes restarts pods; /readyz is the backends' alone
    assert status_path() is None and supervised_children(status_path()) is None
    os.environ["SALESOPS_ENV"] = "embedded"
    path.write_text("{half a fi")  # never half-written by the launcher, but never fatal either
    assert supervised_children(status_path()) is None
