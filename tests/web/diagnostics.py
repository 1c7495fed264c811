"""What a failed browser test reports beside its assertion: the browser's side and the stack's.

A browser test that fails on a busy CI machine usually fails as a timeout ("alert not visible
within 120 s"), which says nothing of why. Every context `conftest.new_page` makes is watched
(pages and their service worker: Playwright reports the worker's requests on the context): each
request that failed on the network with Chromium's net error, each answer of 400 or more, each
request still unanswered when the test failed and for how long, console errors and uncaught page
errors. The stack adds the launcher's children (restarts, last exit) and the logs' warnings and
errors, with the gateway's access lines of the test's last minute. Times are wall-clock (UTC), as
the logs write them, so the two sides line up.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

MAX_LINES = 30  # per list: enough to see a pattern, little enough to read in CI's output


def _now() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]


@dataclass
class ContextLog:
    """What one browser context saw of the network and its console."""

    name: str
    failed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    pending: dict[Any, tuple[str, float]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        now = time.monotonic()
        out = [f"context {self.name}:"]
        out += [f"  network failure {line}" for line in self.failed[-MAX_LINES:]]
        out += [f"  answered {line}" for line in self.refused[-MAX_LINES:]]
        out += [f"  console {line}" for line in self.console[-MAX_LINES:]]
        waiting = sorted(self.pending.values(), key=lambda p: p[1])[:MAX_LINES]
        out += [f"  unanswered for {now - started:.1f} s: {what}" for what, started in waiting]
        return out if len(out) > 1 else [*out, "  (no network failure, error answer or console error)"]


_contexts: list[ContextLog] = []


def reset() -> None:
    """Forget the previous test's contexts."""
    _contexts.clear()


def watch(context: Any, name: str) -> None:
    """Record what `context` (its pages and its service worker) sees, for a failure report."""
    log = ContextLog(name)
    _contexts.append(log)

    def request(r: Any) -> None:
        log.pending[r] = (f"{_now()} {r.method} {r.url}", time.monotonic())

    def finished(r: Any) -> None:
        log.pending.pop(r, None)

    def failed(r: Any) -> None:
        log.pending.pop(r, None)
        log.failed.append(f"{_now()} {r.method} {r.url}: {r.failure}")

    def response(resp: Any) -> None:
        if resp.status >= 400:
            log.refused.append(f"{_now()} {resp.request.method} {resp.url}: {resp.status}")

    def console(message: Any) -> None:
        if message.type in ("error", "warning"):
            log.console.append(f"{_now()} {message.type}: {message.text}")

    context.on("request", request)
    context.on("requestfinished", finished)
    context.on("requestfailed", failed)
    context.on("response", response)
    context.on("console", console)
    context.on("weberror", lambda e: log.console.append(f"{_now()} uncaught: {e.error}"))


def _children(gateway: str) -> list[str]:
    try:
        supervised = httpx.get(f"{gateway}/readyz", timeout=10).json().get("supervised", {})
    except (httpx.HTTPError, ValueError) as exc:
        return [f"  /readyz did not answer: {exc!r}"]
    return [
        f"  {name}: {c.get('state')} restarts={c.get('restarts', 0)} last_exit={c.get('last_exit', '')!r}"
        for name, c in sorted(supervised.items())
    ]


def _tail(path: Path, size: int = 256 * 1024) -> list[str]:
    with path.open("rb") as handle:
        start = max(0, path.stat().st_size - size)
        handle.seek(start)
        lines = handle.read().decode(errors="replace").splitlines()
    return lines[1:] if start else lines  # a read from the middle begins with part of a line


def _notable(line: str) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return "Traceback" in line or "ERROR" in line or "panic" in line
    return isinstance(record, dict) and str(record.get("level", "")).upper() in (
        "WARNING",
        "ERROR",
        "CRITICAL",
    )


def _log_lines(logs: Path, since: float) -> list[str]:
    out: list[str] = []
    for path in sorted(logs.glob("*.log")):
        lines = _tail(path)
        notable = [line for line in lines if _notable(line)][-MAX_LINES:]
        if path.stem == "gateway":  # its access lines show whether (and how) each call was answered
            window = [line for line in lines if _after(line, since)]
            notable = sorted(set(notable) | set(window[-MAX_LINES:]), key=lines.index)
        out += [f"  {path.stem}: {_compact(line)}" for line in notable]
    return out


def _compact(line: str) -> str:
    """A JSON log line as `time level logger: message (duration)`; anything else as it is."""
    try:
        r = json.loads(line)
        took = f" ({r['duration_ms']} ms)" if "duration_ms" in r else ""
        text = f"{str(r.get('ts', ''))[11:23]} {r.get('level', '')} {r.get('logger', '')}: {r.get('msg', '')}{took}"
        if r.get("exc"):  # kit.telemetry's traceback: its last lines say what failed
            text += " | " + " | ".join(str(r["exc"]).splitlines()[-6:])
    except (ValueError, AttributeError, TypeError):
        text = line
    return text[:600]


def _after(line: str, since: float) -> bool:
    try:
        stamp = json.loads(line)["ts"]
        return datetime.fromisoformat(str(stamp)).timestamp() >= since
    except (ValueError, TypeError, KeyError):
        return False


def report(gateway: str, logs: Path, since: float) -> str:
    """The failure report: every context of the test, the launcher's children, the logs."""
    out = [line for log in _contexts for line in log.lines()]
    out += ["launcher's children (/readyz):", *_children(gateway)]
    out += [f"stack logs ({logs}), warnings and errors, and the gateway's lines since the test began:"]
    out += _log_lines(logs, since) or ["  (none)"]
    return "\n".join(out)
