"""`make run` names whoever holds a port it needs, and leftovers of a launcher that died."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local import launcher, ports

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_the_holder_of_a_listening_port_is_named_with_its_command_line(listener: int) -> None:
    found = ports.holders(listener)
    assert [h.pid for h in found] == [os.getpid()]
    assert "pytest" in found[0].cmdline or "python" in found[0].cmdline
    said = ports.explain(listener)
    assert f"port {listener} is held by pid {os.getpid()}" in said
    assert f"kill {os.getpid()}" in said


def test_a_free_port_has_no_holder() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])  # bound, never listening
    assert ports.holders(port) == []


def test_an_explicit_port_that_is_taken_stops_the_start_naming_the_holder(listener: int) -> None:
    os.environ["SALESOPS_GATEWAY_PORT"] = str(listener)
    with pytest.raises(SystemExit, match=rf"SALESOPS_GATEWAY_PORT={listener}, but .*pid {os.getpid()}"):
        launcher._port("SALESOPS_GATEWAY_PORT", 8080, auto=False)


def test_make_run_refuses_a_taken_port_before_starting_anything(listener: int, tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "SALESOPS_NOTIFY_PORT": str(listener)}
    run = subprocess.run(
        [sys.executable, "-m", "deploy.local", "--var", str(tmp_path / "var"), "--auto-ports"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert f"SALESOPS_NOTIFY_PORT={listener}, but port {listener} is held by pid {os.getpid()}" in run.stderr
    assert f"kill {os.getpid()}" in run.stderr
    assert "starting the local stack" not in run.stdout  # nothing was started
    assert not (tmp_path / "var" / "logs").exists()


def test_a_taken_default_port_is_named_and_another_one_used(
    listener: int, capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = launcher._port("SALESOPS_GATEWAY_PORT", listener, auto=False)
    assert chosen != listener
    said = capsys.readouterr().out
    assert f"port {listener} (SALESOPS_GATEWAY_PORT) is held by pid {os.getpid()}" in said
    assert f"using {chosen} instead" in said


def test_leftovers_of_a_dead_launcher_are_named_with_how_to_stop_them(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(120)"]
    child = subprocess.Popen(argv)
    try:
        deadline = time.monotonic() + 30  # until exec is done, /proc shows the forking parent's command
        while not ports.alive_with_cmdline(child.pid, argv) and time.monotonic() < deadline:
            time.sleep(0.01)
        status = {
            "launcher_pid": 999999,
            "children": {
                "leads": {"pid": child.pid, "cmd": argv},
                "notify": {"pid": child.pid, "cmd": [*argv, "other"]},  # a recycled pid: not ours
            },
        }
        (tmp_path / "supervisor.json").write_text(json.dumps(status))
        assert launcher.leftovers(tmp_path) == [("leads", child.pid)]
        with pytest.raises(
            SystemExit, match=rf"(?s)still running:.*leads\s+pid {child.pid}.*kill {child.pid}"
        ):
            launcher.refuse_leftovers(tmp_path)
    finally:
        child.kill()
        child.wait()
    assert launcher.leftovers(tmp_path) == []  # gone: nothing in the way
    assert not ports.alive_with_cmdline(child.pid, argv)


def test_no_status_file_means_no_leftovers(tmp_path: Path) -> None:
    assert launcher.leftovers(tmp_path) == []
    (tmp_path / "supervisor.json").write_text("{not json")
    assert launcher.leftovers(tmp_path) == []


def test_the_launcher_imports_no_grpc_http_client_jwt_or_gateway() -> None:
    """The launcher outlives the stack: what needs these runs in its child processes."""
    heavy = ("grpc", "httpx", "redis", "jwt", "cryptography", "gateway", "sqlalchemy", "temporalio")
    code = f"import sys, deploy.local.launcher; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.split() == []
