"""The test hosts themselves: hosts reach each other and the test process reaches them without a
link, address or route of the lab in the root namespace, a killed host is gone and unreachable, and
closing the lab (also after a failure, also from atexit) leaves no namespace, link, process or file."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.multihost import netns
from tests.multihost.hosts import require_hosts, until

pytestmark = [pytest.mark.xdist_group(netns.XDIST_GROUP)]

# A TCP echo-less server whose child (a grandchild of the test) must die with its host too.
SERVER = """
import socket, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7000)); s.listen()
while True:
    s.accept()[0].close()
"""


def _in_root(lab: netns.Lab) -> list[str]:
    """What of the lab the root namespace shows: links named like it, addresses and routes in its subnet."""

    def ip(*args: str) -> list[str]:
        out = subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout
        return out.splitlines()

    def in_subnet(line: str) -> bool:
        for word in line.replace("/", " ").split():
            try:
                if ipaddress.ip_address(word) in lab.subnet:
                    return True
            except ValueError:
                continue
        return False

    found = [line for line in ip("-br", "link") if lab.run_id.rsplit("-", 1)[1] in line]
    return found + [
        line for line in ip("-br", "addr") + ip("route", "show", "table", "all") if in_subnet(line)
    ]


def _in_host(lab: netns.Lab, host: str, target: str) -> bool:
    probe = f"import socket; socket.create_connection(({target!r}, 7000), timeout=2)"
    found = subprocess.run(
        ["ip", "netns", "exec", lab.hosts[host].ns, sys.executable, "-c", probe], timeout=30
    )
    return found.returncode == 0


def _leftovers(lab: netns.Lab) -> list[str]:
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True).stdout
    left = [line for line in names.splitlines() if lab.run_id in line]
    left += [line for line in links.splitlines() if lab.run_id.rsplit("-", 1)[1] in line]
    left += [f"pid {p.popen.pid}" for p in lab.procs if p.popen.poll() is None]
    if lab.workdir.exists():
        left.append(str(lab.workdir))
    return left


@pytest.fixture
def lab() -> Iterator[netns.Lab]:
    require_hosts(infra=False)
    made = netns.Lab()
    try:
        yield made
    finally:
        made.close()


def test_hosts_talk_a_killed_host_is_gone_and_closing_leaves_nothing(lab: netns.Lab) -> None:
    for name, index in (("a", 11), ("b", 12)):
        host = lab.add_host(name, index)
        lab.spawn(name, "server", [sys.executable, "-c", SERVER, host.address], {})
    a, b = lab.hosts["a"].address, lab.hosts["b"].address
    until("both servers", lambda: lab.reachable(a, 7000) and lab.reachable(b, 7000), 60, lab)
    assert _in_host(lab, "b", a) and _in_host(lab, "a", b)
    # The test process's way in is a relay on loopback, not a link of the root namespace.
    assert _in_root(lab) == []
    relayed = lab.relays.forward(a, 7000)
    with socket.create_connection(relayed, timeout=5) as conn:
        conn.settimeout(5)
        assert conn.recv(1) == b""  # the server accepted and closed: the relay carried both ways
    assert len(netns.namespace_pids(lab.hosts["a"].ns)) == 2  # the server and its child

    lab.kill_host("a")
    lab.cut_link("a")
    assert netns.namespace_pids(lab.hosts["a"].ns) == []
    assert not lab.reachable(a, 7000) and not _in_host(lab, "b", a)
    assert lab.reachable(b, 7000)

    lab.close()
    assert _leftovers(lab) == []


def test_a_failing_test_still_leaves_nothing() -> None:
    require_hosts(infra=False)
    lab = netns.Lab()
    with pytest.raises(RuntimeError, match="boom"):
        try:
            host = lab.add_host("a", 11)
            lab.spawn("a", "server", [sys.executable, "-c", SERVER, host.address], {})
            raise RuntimeError("boom")
        finally:
            lab.close()
    assert _leftovers(lab) == []


def test_a_run_killed_outright_is_swept_by_the_next() -> None:
    """A pytest killed with SIGKILL runs no cleanup: the next run removes what it left."""
    require_hosts(infra=False)
    script = (
        "import os, sys; from tests.multihost import netns; lab = netns.Lab(); lab.add_host('a', 11); "
        "print(lab.run_id, flush=True); os._exit(0)"  # no atexit, no close: as if killed
    )
    made = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    run_id = made.stdout.split()[0]
    pid = run_id.split("-")[0]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert run_id in listed and list(Path(tempfile.gettempdir()).glob(f"{netns.PREFIX}{pid}-*"))
    netns.sweep_stale()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert run_id not in listed
    assert not list(Path(tempfile.gettempdir()).glob(f"{netns.PREFIX}{pid}-*"))
