"""What the suites measure of their processes: CPU seconds so far, and an optional py-spy profile."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU (all threads) of a process so far, from /proc/<pid>/stat (fields 14 and 15):
    a figure the neighbours' load does not skew as it does wall time. 0 where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def py_spy(pid: int, label: str = "") -> tuple[subprocess.Popen[bytes], str] | None:
    """SALESOPS_BENCH_PROFILE=<file.svg|.txt>: py-spy (not a runtime dependency) records `pid` until
    it is sent SIGINT (raw collapsed stacks for .txt, a flame graph otherwise); None when unset.
    A `label` goes before the extension (<file>-<label>.svg), so a suite profiling several runs
    (one per database) keeps each instead of overwriting the first with the last."""
    out = os.environ.get("SALESOPS_BENCH_PROFILE", "")
    if not out:
        return None
    if label:
        path = Path(out)
        out = str(path.with_name(f"{path.stem}-{label}{path.suffix}"))
    fmt = "raw" if out.endswith(".txt") else "flamegraph"
    spy = Path(sys.executable).parent / "py-spy"
    cmd = [str(spy), "record", "--pid", str(pid), "--output", out, "--format", fmt, "--rate", "200"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the measured calls start
    return proc, out


__all__ = ["TICK", "cpu_seconds", "py_spy"]


class GcClock:
    """The CPU seconds this process's garbage collector has taken so far (register it in gc.callbacks;
    a collection runs on the thread that triggered it): how much of a phase's CPU it was."""

    def __init__(self) -> None:
        self.total = 0.0
        self._began = 0.0

    def __call__(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.thread_time()
        else:
            self.total += time.thread_time() - self._began
