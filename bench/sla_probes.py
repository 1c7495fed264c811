"""What bench_sla measures in its processes over a burst: py-spy samples, CPU, CPU-queue time and
the collector's share, each read at an epoch (just before the burst is due, and after it)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.procs import GcClock, cpu_seconds


async def profile(at: float) -> subprocess.Popen[bytes] | None:
    """SALESOPS_BENCH_PROFILE=<file.txt|.svg>: py-spy samples this process (the worker, its local
    activities, the relay) from epoch `at` (just before the burst is due) until the burst's reminders
    are all in the inbox, without pausing it (--nonblocking); None when unset."""
    out = os.environ.get("SALESOPS_BENCH_PROFILE", "")
    if not out:
        return None
    await asyncio.sleep(max(0.0, at - time.time()))
    fmt = "raw" if out.endswith(".txt") else "flamegraph"
    spy = Path(sys.executable).parent / "py-spy"
    cmd = [str(spy), "record", "--pid", str(os.getpid()), "--output", out, "--format", fmt]
    args = [*cmd, "--rate", "100", "--nonblocking", "--threads"]
    return await asyncio.to_thread(subprocess.Popen, args, stdout=subprocess.DEVNULL)


def stop_profile(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        spy.wait(30)


async def cpu_at(pids: list[int], at: float) -> list[float]:
    """CPU seconds so far of each of `pids` at epoch `at` (at once if that has passed)."""
    await asyncio.sleep(max(0.0, at - time.time()))
    return [cpu_seconds(p) for p in pids]


def runq_seconds(pid: int) -> float:
    """Seconds the threads of `pid` (those alive now) spent runnable but waiting for a CPU
    (/proc/<pid>/task/*/schedstat, second field); 0 where the kernel does not say."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


async def runq_at(pids: list[int], at: float) -> list[float]:
    """_runq_seconds of each of `pids` at epoch `at` (at once if that has passed)."""
    await asyncio.sleep(max(0.0, at - time.time()))
    return [runq_seconds(p) for p in pids]


async def gc_at(clock: GcClock, at: float) -> float:
    await asyncio.sleep(max(0.0, at - time.time()))
    return clock.total
