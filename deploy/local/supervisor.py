"""Keep the embedded stack's processes running: restart a crashed child with back-off.

The launcher owns every child (Redis, the Temporal dev server, the services, the
gateway). Until the stack is READY a child that exits is a start failure (the
launcher stops everything and shows its log); once armed, a crash restarts that
child alone, after a delay that doubles with each quick crash in a row (capped),
so a child that keeps failing is reported loudly instead of restarted in a hot loop.

Children die with the launcher, even a SIGKILLed one: on Linux each child gets a
parent-death signal (prctl PR_SET_PDEATHSIG) between fork and exec, which holds
across exec for any binary (redis-server and the Go `temporal` CLI included).

The state of every child is written to a small JSON file under the var dir
(`supervisor.json`); the gateway reads it in embedded mode for `/readyz`, and the
next `make run` reads it to name leftovers of a launcher that died some other way.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

STATUS_FILE = "supervisor.json"
STATUS_ENV = "SALESOPS_SUPERVISOR_STATUS"  # where the gateway finds the file (embedded mode only)
PR_SET_PDEATHSIG = 1
PARENT_DEATH_SIGNAL = signal.SIGTERM  # an orderly stop: services drain, Redis syncs its AOF


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()  # resolved here, not in the forked child


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to SIGTERM the child when this process dies, or None
    where there is no such signal (then the next start names leftovers instead).

    The signal is tied to the thread that forks: spawn from the main thread only."""
    if _PRCTL is None:
        return None
    prctl, parent = _PRCTL, os.getpid()

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, int(PARENT_DEATH_SIGNAL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


def log_tail(path: Path | None, lines: int = 20) -> str:
    if path is None or not path.exists():
        return ""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 16384))
        text = handle.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class RestartPolicy:
    base_delay: float = 0.5  # first restart after a crash
    max_delay: float = 30.0  # the cap of the doubling
    stable_after: float = 30.0  # a run at least this long resets the doubling
    crash_loop_after: int = 5  # quick crashes in a row before the loud report

    def delay(self, streak: int) -> float:
        return float(min(self.max_delay, self.base_delay * 2 ** max(0, streak - 1)))


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: list[str]
    address: str = ""
    env: dict[str, str] | None = None
    log_path: Path | None = None
    tier: int = 1  # stop order: higher tiers stop first (gateway 2, services 1, infra 0)


@dataclass
class Child:
    spec: ChildSpec
    proc: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    state: str = "up"  # up | restarting | stopped
    restarts: int = 0
    streak: int = 0  # quick crashes in a row
    last_exit: str = ""
    last_exit_time: str = ""
    restart_at: float = 0.0


def spawn(spec: ChildSpec, die_with_launcher: bool = True) -> subprocess.Popen[bytes]:
    out: IO[bytes] | int = subprocess.DEVNULL
    if spec.log_path is not None:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = spec.log_path.open("ab")
    try:
        return subprocess.Popen(
            spec.argv,
            env=spec.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the launcher only; it stops children in order
            preexec_fn=die_with_parent() if die_with_launcher else None,
        )
    finally:
        if not isinstance(out, int):
            out.close()  # the child holds its own descriptor


class Supervisor:
    def __init__(
        self,
        status_path: Path,
        policy: RestartPolicy | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.status_path = status_path
        self.policy = policy or RestartPolicy()
        self.say = say or (lambda line: print(line, flush=True))
        self.children: dict[str, Child] = {}
        self.armed = False  # restarts only once the stack was READY

    def start(self, spec: ChildSpec) -> Child:
        child = Child(spec, spawn(spec))
        self.children[spec.name] = child
        self.write_status()
        return child

    def adopt(self, spec: ChildSpec, proc: subprocess.Popen[bytes]) -> Child:
        """A child started elsewhere (infra waits for its port) that is supervised from now on."""
        child = Child(spec, proc)
        self.children[spec.name] = child
        self.write_status()
        return child

    def arm(self) -> None:
        self.armed = True
        self.write_status()

    def poll(self) -> None:
        """Notice exits and start children whose back-off is over; raise on a start failure."""
        changed = False
        now = time.monotonic()
        for child in self.children.values():
            if child.state == "up" and child.proc.poll() is not None:
                self._exited(child, now)
                changed = True
            elif child.state == "restarting" and now >= child.restart_at:
                child.proc = spawn(child.spec)
                child.started, child.state = time.monotonic(), "up"
                self.say(f"supervisor: {child.spec.name} started again (pid {child.proc.pid})")
                changed = True
        if changed:
            self.write_status()

    def _exited(self, child: Child, now: float) -> None:
        name, code = child.spec.name, int(child.proc.returncode)
        child.last_exit = describe_exit(code)
        child.last_exit_time = datetime.now(UTC).isoformat(timespec="seconds")
        if not self.armed:
            tail = log_tail(child.spec.log_path)
            raise RuntimeError(f"{name} exited with {code} ({child.last_exit})\n{tail}")
        ran = now - child.started
        child.streak = 1 if ran >= self.policy.stable_after else child.streak + 1
        child.restarts += 1
        delay = self.policy.delay(child.streak)
        child.state, child.restart_at = "restarting", now + delay
        self.say(
            f"supervisor: {name} (pid {child.proc.pid}) died: {child.last_exit} after {ran:.1f}s up;"
            f" restart #{child.restarts} in {delay:.1f}s"
        )
        if child.streak == self.policy.crash_loop_after:
            self.say(
                f"supervisor: !!! {name} is crash-looping: {child.streak} crashes in a row, each within"
                f" {self.policy.stable_after:.0f}s of its start; retrying every {self.policy.max_delay:.0f}s"
                f" at most. Last lines of {child.spec.log_path}:\n{log_tail(child.spec.log_path)}"
            )

    def status(self) -> dict[str, object]:
        children: dict[str, dict[str, object]] = {}
        now = time.monotonic()
        for name, child in self.children.items():
            entry: dict[str, object] = {
                "state": child.state,
                "pid": child.proc.pid,
                "restarts": child.restarts,
                "last_exit": child.last_exit or None,
                "last_exit_time": child.last_exit_time or None,
                "crash_looping": child.streak >= self.policy.crash_loop_after,
                "address": child.spec.address,
                "cmd": child.spec.argv,
            }
            if child.state == "restarting":
                entry["restart_in_seconds"] = round(max(0.0, child.restart_at - now), 1)
            children[name] = entry
        return {"launcher_pid": os.getpid(), "supervising": self.armed, "children": children}

    def write_status(self) -> None:
        tmp = self.status_path.with_name(self.status_path.name + ".tmp")
        tmp.write_text(json.dumps(self.status(), indent=1))
        os.replace(tmp, self.status_path)  # readers never see half a file

    def stop(self, timeout: float = 20.0) -> None:
        """Stop every child, highest tier first; a tier's children stop together."""
        self.armed = False
        for tier in sorted({c.spec.tier for c in self.children.values()}, reverse=True):
            group = [c for c in self.children.values() if c.spec.tier == tier]
            for child in group:
                child.state = "stopped"
                if child.proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        child.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for child in group:
                try:
                    child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.proc.kill()
                    child.proc.wait(timeout=5)
        with contextlib.suppress(OSError):
            self.write_status()
