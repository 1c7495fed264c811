"""Who holds a TCP port: `make run` names the process instead of failing obscurely.

Linux only, from /proc: the listening sockets in /proc/net/tcp{,6} give an inode, and
the process whose /proc/<pid>/fd links to `socket:[inode]` holds it. Processes of other
users cannot be looked into; they are reported as unknown.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
LISTEN = "0A"


@dataclass(frozen=True)
class Holder:
    pid: int
    cmdline: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.cmdline})"


def listening_inodes(port: int, proc: Path = PROC) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in (proc / "net" / table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) < 10 or fields[3] != LISTEN:
                    continue
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[9] != "0":
                    inodes.add(fields[9])
    return inodes


def cmdline(pid: int, proc: Path = PROC) -> str:
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part) or "?"


def holders(port: int, proc: Path = PROC) -> list[Holder]:
    """The processes with a listening socket on `port` (any address), as far as we may look."""
    wanted = {f"socket:[{inode}]" for inode in listening_inodes(port, proc)}
    if not wanted:
        return []
    found: list[Holder] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        found.append(Holder(int(entry.name), cmdline(int(entry.name), proc)))
                        break
    return found


def explain(port: int, proc: Path = PROC) -> str:
    """One sentence naming who holds `port` and how to stop it."""
    found = holders(port, proc)
    if not found:
        return (
            f"port {port} is in use by a process this user cannot inspect (try `ss -ltnp 'sport = :{port}'`)"
        )
    names = "; ".join(str(h) for h in found)
    pids = " ".join(str(h.pid) for h in found)
    return f"port {port} is held by {names}; stop it with `kill {pids}`"


def alive_with_cmdline(pid: int, argv: list[str], proc: Path = PROC) -> bool:
    """True when `pid` runs now and is the command we started (not a recycled pid)."""
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
        state = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z" and [p.decode(errors="replace") for p in raw.split(b"\0") if p] == argv
