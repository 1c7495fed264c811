"""The one result shape every benchmark suite returns, the verdict table, and the bounded runner.

A suite is a function `(quick: bool) -> list[Figure]`. Each figure carries its value and unit,
the same-run baseline it is compared with (if any), the goal (a bound on the figure itself or on
its ratio to the baseline, with a direction) and the number of calls that failed while it was
measured. A figure with failed calls never "meets": errors are reported, not hidden.

`run_suite` runs one suite in its own process group with a deadline: a suite that raises,
exits or outlives its deadline is reported as such (its processes killed) and the run goes on.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

AT_LEAST: Literal["at_least"] = "at_least"
AT_MOST: Literal["at_most"] = "at_most"
MEETS, SHORT, INFO, NO_DATA = "meets", "falls short", "-", "no data"


@dataclass(frozen=True)
class Goal:
    """`on` the ratio to the baseline or the figure itself; `direction` says which side is good."""

    target: float
    direction: Literal["at_least", "at_most"] = AT_LEAST
    on: Literal["ratio", "value"] = "ratio"

    def met(self, x: float) -> bool:
        return x >= self.target if self.direction == AT_LEAST else x <= self.target

    def __str__(self) -> str:
        sign = ">=" if self.direction == AT_LEAST else "<="
        return f"{'ratio' if self.on == 'ratio' else 'value'} {sign} {self.target:g}"


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    baseline: float | None = None  # the same-run baseline, in the same unit
    baseline_name: str = ""
    goal: Goal | None = None
    failed: int = 0  # failed calls while measuring (figure and baseline)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline or math.isnan(self.baseline):
            return None
        return self.value / self.baseline

    @property
    def verdict(self) -> str:
        if self.failed:
            return SHORT
        if self.goal is None:
            return INFO
        x = self.ratio if self.goal.on == "ratio" else self.value
        if x is None or math.isnan(x):
            return NO_DATA
        return MEETS if self.goal.met(x) else SHORT

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["goal"] = None if self.goal is None else {**asdict(self.goal), "text": str(self.goal)}
        out.update(ratio=self.ratio, verdict=self.verdict)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Figure:
        goal = data.get("goal")
        return cls(
            name=data["name"],
            value=float("nan") if data["value"] is None else float(data["value"]),
            unit=data["unit"],
            baseline=data.get("baseline"),
            baseline_name=data.get("baseline_name", ""),
            goal=None
            if goal is None
            else Goal(float(goal["target"]), goal["direction"], goal.get("on", "ratio")),
            failed=int(data.get("failed", 0)),
            note=data.get("note", ""),
        )


def pick(
    figures: Mapping[str, float],
    key: str,
    unit: str,
    *,
    name: str = "",
    baseline: str = "",
    goal: Goal | None = None,
    failed: Sequence[str] = (),
    note: str = "",
) -> Figure:
    """A Figure from a suite's dict of floats (how the older suites report), by key names.

    Missing keys give NaN ("no data"), never an exception: a partial run still reports."""
    base = figures.get(baseline) if baseline else None
    return Figure(
        name=name or key,
        value=float(figures.get(key, float("nan"))),
        unit=unit,
        baseline=None if base is None else float(base),
        baseline_name=baseline,
        goal=goal,
        failed=int(sum(figures.get(k, 0.0) for k in failed)),
        note=note,
    )


Suite = Callable[[bool], list[Figure]]


@dataclass
class SuiteReport:
    suite: str
    status: str  # ok | failed | timeout | skipped
    seconds: float
    figures: list[Figure] = field(default_factory=list)
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "status": self.status,
            "seconds": round(self.seconds, 1),
            "error": self.error,
            "figures": [f.to_json() for f in self.figures],
        }


def _fmt(x: float | None) -> str:
    if x is None or math.isnan(x):
        return "-"
    if x == 0 or 0.01 <= abs(x) < 100_000:
        return f"{x:.3g}" if abs(x) < 100 else f"{x:,.0f}"
    return f"{x:.3g}"


def table(reports: Sequence[SuiteReport]) -> str:
    """The verdict table: one line per figure; a suite that failed or timed out is one line saying so."""
    head = ("suite", "figure", "value", "unit", "baseline", "ratio", "goal", "failed", "verdict")
    rows: list[tuple[str, ...]] = [head]
    for rep in reports:
        if rep.status != "ok":
            rows.append((rep.suite, f"[{rep.status}] {rep.error[:70]}", "", "", "", "", "", "", rep.status))
        for f in rep.figures:
            rows.append(
                (
                    rep.suite,
                    f.name,
                    _fmt(f.value),
                    f.unit,
                    _fmt(f.baseline),
                    _fmt(f.ratio),
                    str(f.goal) if f.goal else "",
                    str(f.failed),
                    f.verdict,
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(reports: Sequence[SuiteReport]) -> str:
    out = ["| suite | figure | value | unit | baseline | ratio | goal | failed | verdict |", "|" + "---|" * 9]
    for rep in reports:
        if rep.status != "ok":
            out.append(f"| {rep.suite} | **{rep.status}**: {rep.error[:80]} | | | | | | | {rep.status} |")
        for f in rep.figures:
            cells = (
                rep.suite,
                f.name,
                _fmt(f.value),
                f.unit,
                f"{_fmt(f.baseline)} ({f.baseline_name})" if f.baseline is not None else "",
                _fmt(f.ratio),
                str(f.goal) if f.goal else "",
                str(f.failed),
                f"**{f.verdict}**" if f.verdict == SHORT else f.verdict,
            )
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """The suite's whole process group (dev servers, redis, services it started)."""
    for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_suite(name: str, quick: bool, deadline_s: float, env: Mapping[str, str] | None = None) -> SuiteReport:
    """Run suite `name` (see bench.__main__.SUITES) in a child process group, bounded by `deadline_s`."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        out = Path(tmp) / "figures.json"
        cmd = [sys.executable, "-m", "bench", "--one", name, "--out", str(out)] + (
            ["--quick"] if quick else []
        )
        proc = subprocess.Popen(cmd, start_new_session=True, env=dict(env or os.environ))
        try:
            rc = proc.wait(deadline_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return SuiteReport(name, "timeout", time.monotonic() - started, error=f"over {deadline_s:.0f} s")
        except BaseException:
            _kill_group(proc)
            raise
        _kill_group(proc)  # anything the suite left behind
        seconds = time.monotonic() - started
        if not out.exists():
            return SuiteReport(name, "failed", seconds, error=f"exit code {rc}, no figures")
        data = json.loads(out.read_text())
        figures = [Figure.from_json(f) for f in data.get("figures", [])]
        if data.get("error"):
            return SuiteReport(name, "failed", seconds, figures, data["error"])
        return SuiteReport(name, "ok", seconds, figures)


def run_in_process(fn: Suite, quick: bool, out: Path) -> int:
    """The child's side: run the suite, write its figures (or its error) as JSON."""

    def stop(_sig: int, _frame: object) -> None:
        raise SystemExit(f"stopped by signal {_sig}")  # finally blocks stop what the suite started

    signal.signal(signal.SIGTERM, stop)
    try:
        figures = fn(quick)
        out.write_text(json.dumps({"figures": [f.to_json() for f in figures]}))
        return 0
    except Exception as exc:  # reported in the table; the parent goes on with the next suite
        import traceback

        traceback.print_exc()
        out.write_text(json.dumps({"figures": [], "error": f"{type(exc).__name__}: {str(exc)[:300]}"}))
        return 1
