"""Test hosts in Linux network namespaces: a switch, hosts on it, processes run in them.

Every name carries the run's id (and the creating pid, so a later run can sweep what a
killed run left). Topology: one namespace holds a bridge (the switch, so the host's own
firewall never sees the traffic); each host namespace gets a veth into it and an address
in a private /24 picked per run. The test process's side is a `client` namespace on the
switch too (`.1`), which it reaches through relays (tests/multihost/relay.py) and
`run_in_client`. Nothing is ever added to the root namespace: a link or address appearing
there is a network change to every browser on the machine (Chromium fails requests in flight,
net::ERR_NETWORK_CHANGED, even on loopback), so these tests run beside the browser tests.
Deleting a namespace deletes its veths.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tests.multihost.relay import Relays

PREFIX = "salesops-mh-"

# One unit for xdist (--dist loadgroup), beside the browser tests' "web" group: the labs never
# change the root namespace (above), so the two may run at once on two workers.
XDIST_GROUP = "multihost"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def unavailable() -> str | None:
    """Why this machine cannot run the multi-host tests, or None when it can."""
    if os.name != "posix" or os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip`"
    probe = f"{PREFIX}probe-{os.getpid()}"
    added = _ip("netns", "add", probe, check=False)
    if added.returncode != 0:
        return f"`ip netns add` failed: {added.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def namespace_pids(ns: str) -> list[int]:
    found = _ip("netns", "pids", ns, check=False)
    return [int(p) for p in found.stdout.split() if p.strip().isdigit()]


def kill_namespace(ns: str, timeout: float = 10.0) -> None:
    """SIGKILL every process in `ns` and wait until none is left."""
    deadline = time.monotonic() + timeout
    while True:
        pids = namespace_pids(ns)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {pids} in {ns} survive SIGKILL")
        time.sleep(0.05)


def sweep_stale() -> None:
    """Remove the namespaces and work directories of earlier runs whose process is gone (a killed pytest)."""
    listed = _ip("netns", "list", check=False).stdout.split("\n")
    for line in listed:
        name = line.split(" ", 1)[0].strip()
        if not name.startswith(PREFIX):
            continue
        owner = name[len(PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            with contextlib.suppress(RuntimeError):
                kill_namespace(name)
            _ip("netns", "del", name, check=False)
    for workdir in Path(tempfile.gettempdir()).glob(f"{PREFIX}*-*"):
        owner = workdir.name[len(PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(workdir, ignore_errors=True)


def _pick_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.200.0.0/13 that no route of this machine overlaps."""
    routes = _ip("-4", "route", "show", "table", "all", check=False).stdout.split("\n")
    used = []
    for line in routes:
        word = line.split(" ", 1)[0]
        with contextlib.suppress(ValueError):
            if word and word not in ("default", "local", "broadcast", "unreachable"):
                used.append(ipaddress.ip_network(word, strict=False))
    for _ in range(200):
        net = ipaddress.IPv4Network(f"10.{random.randint(200, 207)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free private /24 for the test hosts")


@dataclass
class Proc:
    """A process started in a host; its own process group (killed as a group)."""

    name: str
    host: str
    popen: subprocess.Popen[bytes]
    log: Path
    killed: bool = False  # on purpose (its host was killed): its exit is no failure

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Host:
    name: str
    ns: str
    address: str
    port_iface: str  # its veth end on the switch, set down to cut the host's link


@dataclass
class Lab:
    """Namespaces, links and processes of one test run; `close()` removes all of it."""

    run_id: str = field(default_factory=lambda: f"{os.getpid()}-{random.randrange(16**6):06x}")
    hosts: dict[str, Host] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")))
    _namespaces: list[str] = field(default_factory=list)
    _relays: Relays | None = None
    _logs: list[IO[bytes]] = field(default_factory=list)
    _closed: bool = False

    def __post_init__(self) -> None:
        atexit.register(self.close)  # a test that dies halfway (or an interrupted pytest) still cleans up
        self.subnet = _pick_subnet()
        self.switch = self._add_ns("net")
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        # The test process's side: a namespace of its own on the switch, like any host.
        self.client = self.add_host("client", 1)
        del self.hosts["client"]
        self._relays = Relays(self.client.ns)

    def address(self, index: int) -> str:
        return str(self.subnet.network_address + index)

    @property
    def client_address(self) -> str:
        return self.client.address

    @property
    def relays(self) -> Relays:
        assert self._relays is not None, "the lab is closed"
        return self._relays

    def reachable(self, address: str, port: int, timeout: float = 1.0) -> bool:
        """Whether address:port accepts a TCP connection from the client namespace."""
        return self.relays.reachable(address, port, timeout)

    def target(self, address: str, port: int) -> str:
        """`127.0.0.1:<port>` (root namespace) relayed to address:port from the client namespace."""
        return self.relays.target(address, port)

    def run_in_client(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the client namespace (a command that dials the hosts itself)."""
        return ["ip", "netns", "exec", self.client.ns, *argv]

    def _add_ns(self, suffix: str) -> str:
        ns = f"{PREFIX}{self.run_id}-{suffix}"
        _ip("netns", "add", ns)
        self._namespaces.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        return ns

    def _plug(self, iface: str) -> None:
        _ip("-n", self.switch, "link", "set", iface, "master", "br0")
        _ip("-n", self.switch, "link", "set", iface, "up")

    def add_host(self, name: str, index: int) -> Host:
        ns = self._add_ns(name)
        port = f"p-{name}"
        _ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self._plug(port)
        address = self.address(index)
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        host = Host(name, ns, address, port)
        self.hosts[name] = host
        return host

    def spawn(
        self, host: str, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None
    ) -> Proc:
        """Start `argv` inside the host's namespace, in a new session, output to a log file."""
        log_path = self.workdir / "logs" / f"{host}-{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("ab")
        self._logs.append(log)
        popen = subprocess.Popen(
            ["ip", "netns", "exec", self.hosts[host].ns, *argv],
            env=dict(env),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        proc = Proc(name, host, popen, log_path)
        self.procs.append(proc)
        return proc

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.popen.poll() is not None and not proc.killed:
                raise RuntimeError(
                    f"{proc.host}/{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}"
                )

    def kill_host(self, host: str) -> None:
        """SIGKILL every process in the host (its groups, then whatever else lives in the namespace)."""
        ns = self.hosts[host].ns
        for proc in self.procs:
            if proc.host == host:
                proc.killed = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGKILL)
        kill_namespace(ns)
        for proc in self.procs:
            if proc.host == host:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(timeout=10)

    def cut_link(self, host: str) -> None:
        """Take the host's switch port and its own interface down: nothing reaches it any more."""
        h = self.hosts[host]
        _ip("-n", self.switch, "link", "set", h.port_iface, "down")
        _ip("-n", h.ns, "link", "set", "eth0", "down", check=False)

    def tails(self) -> str:
        return "\n".join(f"--- {p.host}/{p.name} (exit {p.popen.poll()})\n{p.tail()}" for p in self.procs)

    def close(self) -> None:
        """Kill every process, delete every namespace and link, remove the work directory. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._relays is not None:
            self._relays.close()  # its thread holds the client namespace alive until it ends
            self._relays = None
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
        for ns in reversed(self._namespaces):
            with contextlib.suppress(RuntimeError):
                kill_namespace(ns)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=10)
        for ns in reversed(self._namespaces):
            _ip("netns", "del", ns, check=False)
        for log in self._logs:
            with contextlib.suppress(OSError):
                log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
        atexit.unregister(self.close)
