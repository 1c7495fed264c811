"""Memory of the embedded stack: RSS of each process `make run` starts, at idle and after load.

Starts `python -m deploy.local --auto-ports` (free ports, its own var directory: never the default
ports other people use) with `make run`'s MALLOC_ARENA_MAX, waits for READY and for the demo
history's writer (a child process, `deploy.local.seed backfill`, that exits when the history is
written) to end, lets it settle, and reads every descendant process's RSS from /proc; the writer's
own peak while it ran is a line apart. Then drives it through the gateway (CreateLead, GetLead, ListLeads, WhoAmI at 64 in
flight) and reads them again. The total is the sum of RSS (an upper bound: shared pages count in
each process); goal: the whole stack under 1.5 GB after load. Beside it, for information, the
stack's PSS (a page shared by n processes counts 1/n in each). A non-200 answer is a failed call.

    .venv/bin/python -m bench.memory [--quick]
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.verdict import AT_MOST, Figure, Goal

ROOT = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE")
GOAL_MB = 1536.0


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children[ppid].append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def label(pid: int) -> str:
    """A short name for a process of the stack: the service and role, redis, temporal, gateway."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"pid {pid}"
    words = [a.decode(errors="replace") for a in argv if a]
    text = " ".join(words)
    for marker in ("services.", "gateway", "deploy.local"):
        for w in words:
            if w.startswith(marker):
                role = words[words.index("--role") + 1] if "--role" in words else ""
                return f"{w.removeprefix('services.')} {role}".strip()
    if "redis-server" in text:
        return "redis"
    if "temporal" in text:
        return "temporal dev server"
    return Path(words[0]).name if words else f"pid {pid}"


def pss_mb(pids: list[int]) -> float:
    """The processes' proportional set size together (MB): a page shared by n of them counts 1/n
    in each (the Python processes share libpython and the extension modules' code)."""
    total_kb = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total_kb += next((int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:")), 0)
    return total_kb / 1024


def rss_mb(pids: list[int]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for pid in pids:
        try:
            pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        out[label(pid)] += pages * PAGE / 2**20
    return dict(out)


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (int(line[15:]) for line in head.split(b"\r\n") if line[:15].lower() == b"content-length:"), 0
    )
    return int(head[9:12]), await reader.readexactly(length)


async def _load(gateway: str, token: str, seconds: float) -> int:
    """Creates, gets and lists through the gateway; returns the number of failed calls."""
    host, port = gateway.removeprefix("http://").split(":")
    failed = 0
    conns = [await asyncio.open_connection(host, int(port)) for _ in range(64)]
    stop_at = time.perf_counter() + seconds

    async def worker(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal failed
        i = 0
        while time.perf_counter() < stop_at:
            i += 1
            if i % 4 == 0:
                body = json.dumps(
                    {
                        "contact": {
                            "name": "Mem",
                            "phone": f"+86137{n:03d}{i:05d}",
                            "email": f"m{n}x{i}@example.com",
                        },
                        "company": {"name": f"Memory Co {n} {i}"},
                        "source": {"channel": "LEAD_CHANNEL_WEB_FORM"},
                        "region": "east/shanghai",
                    }
                ).encode()
                head = (
                    f"POST /v1/leads HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                )
                writer.write(head.encode() + body)
            else:
                path = (
                    "/v1/leads?pageSize=20",
                    "/v1/whoami",
                    "/v1/leads?pageSize=20&filter.grades=LEAD_GRADE_A",
                )[i % 3]
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
                )
            try:
                status, answer = await asyncio.wait_for(_response(reader), 30)
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                failed += 1
                return
            if status not in (200, 201):
                failed += 1
                if failed <= 3:
                    print(f"   load call answered {status}: {answer[:300]!r}", file=sys.stderr)

    await asyncio.gather(*(worker(n, r, w) for n, (r, w) in enumerate(conns)))
    for _, w in conns:
        w.close()
    return failed


def suite(quick: bool) -> list[Figure]:
    settle, load_s = (3.0, 5.0) if quick else (10.0, 30.0)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        tokens_file = Path(tmp) / "tokens.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SALESOPS_", "REDIS_URL"))}
        env["SALESOPS_LOG_LEVEL"] = "WARNING"
        env.setdefault("MALLOC_ARENA_MAX", "2")  # as `make run` starts the launcher
        # One user drives the load: the gateway's per-user limit (600 a window) would answer 429.
        env["SALESOPS_GATEWAY_RATE_TENANT"] = env["SALESOPS_GATEWAY_RATE_USER"] = "0"
        stack = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deploy.local",
                "--var",
                f"{tmp}/var",
                "--auto-ports",
                "--tokens-file",
                str(tokens_file),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )  # in the suite's process group: a suite killed at its deadline takes the stack with it
        try:
            deadline = time.monotonic() + 240
            while not tokens_file.exists():
                if stack.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"make run stack did not become ready (exit {stack.returncode})")
                time.sleep(0.5)
            info = json.loads(tokens_file.read_text())
            writer_mb = _wait_history(stack.pid, deadline=time.monotonic() + 300)
            time.sleep(settle)
            idle = rss_mb(descendants(stack.pid))
            import uvloop

            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                failed = runner.run(_load(info["gateway"], info["tokens"]["admin"], load_s))
            pids = descendants(stack.pid)
            loaded, loaded_pss = rss_mb(pids), pss_mb(pids)
        finally:
            stack.send_signal(signal.SIGTERM)
            try:
                stack.wait(60)
            except subprocess.TimeoutExpired:
                stack.kill()
                stack.wait(10)
    figures = [
        Figure(
            "make run stack RSS after load",
            sum(loaded.values()),
            "MB",
            baseline=sum(idle.values()),
            baseline_name="same stack at idle",
            goal=Goal(GOAL_MB, AT_MOST, on="value"),
            failed=failed,
            note=f"{len(loaded)} process kinds; {load_s:.0f} s of create/get/list/whoami at 64 in flight",
        )
    ]
    figures.append(
        Figure(
            "make run stack PSS after load (shared pages counted once)",
            loaded_pss,
            "MB",
            note="what the stack takes from the machine; the goal is on the RSS sum above",
        )
    )
    for name in sorted(loaded, key=lambda k: -loaded[k]):
        figures.append(
            Figure(f"RSS {name}", loaded[name], "MB", baseline=idle.get(name), baseline_name="idle")
        )
    figures.append(
        Figure(
            "RSS demo history writer, peak while it ran (exits when the history is written)",
            writer_mb,
            "MB",
        )
    )
    return figures


def _wait_history(root: int, deadline: float, appear_s: float = 30.0) -> float:
    """Wait for the stack's demo history writer to start and exit; its largest RSS seen meanwhile
    (MB). The launcher writes the tokens file a moment before it starts the writer: a writer not
    seen yet is waited for (`appear_s`), or the stack would be measured with it still running."""
    peak, seen, appear_by = 0.0, False, time.monotonic() + appear_s
    while time.monotonic() < deadline:
        writers = [p for p in descendants(root) if label(p) == "deploy.local.seed"]
        seen = seen or bool(writers)
        if not writers and (seen or time.monotonic() > appear_by):
            return peak
        peak = max(peak, sum(rss_mb(writers).values()))
        time.sleep(0.5)
    raise RuntimeError("the demo history was not written within 300 s")


if __name__ == "__main__":
    from bench.verdict import SuiteReport, table

    print(table([SuiteReport("memory", "ok", 0.0, suite("--quick" in sys.argv))]))
