"""`make bench`: every benchmark, each against a baseline measured in the same run, as a verdict table.

Each suite runs in its own process group under a deadline (bench.verdict.run_suite): one that
fails or outlives its deadline is reported as such and the run goes on. The table prints at the
end and is written as JSON to bench/results/<timestamp>[-quick].json (and latest[-quick].json).
`--quick` (make bench-quick) runs reduced sizes and skips the suites that cannot be reduced
below a minute; it is for development, the full run is the one docs/performance.md quotes.

    .venv/bin/python -m bench [--quick] [suite ...]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from bench.verdict import SuiteReport, markdown, run_in_process, run_suite, table

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Entry:
    target: str  # "module:function", a Suite: (quick) -> list[Figure]
    deadline_s: float  # full run
    quick_deadline_s: float | None  # None: skipped by --quick


SUITES: dict[str, Entry] = {
    "grpc_overhead": Entry("bench.grpc_overhead:suite", 180, 25),
    "gateway": Entry("bench.bench_gateway:suite", 300, 40),
    "reads": Entry("bench.bench_reads:suite", 400, 60),
    "events": Entry("bench.bench_events:suite", 240, None),
    "notify": Entry("bench.bench_notify:suite", 300, None),
    "leads_routing": Entry("bench.leads_verdicts:routing", 120, 20),
    "leads_intake": Entry("bench.leads_verdicts:intake", 1500, 300),  # quick: 10,000 / 100,000 leads
    "leads_mixed": Entry("bench.leads_verdicts:mixed", 300, None),
    # 10,000 watches: ~29 ms of CPU each to start and arm (dev server ~19, worker ~9): 7/s at load 27,
    # an estimated 60/s on an idle 2-core machine. Quick: 500 watches took 130-200 s at load 16-30.
    "leads_sla": Entry("bench.bench_sla:suite", 1500, 300),
    "pipeline": Entry("bench.bench_pipeline:suite", 900, 30),
    "approvals": Entry("bench.bench_approvals:suite", 1800, 240),  # 1,000 approvals: 4 passes of RPCs
    # 10,000 cards, 1,000,000 uses seeded straight into SQLite (a few minutes), then the RPC.
    "knowledge_recommend": Entry("bench.knowledge_recommend:recommend_suite", 1800, 300),
    "knowledge_search": Entry("bench.knowledge_search:search_suite", 900, 240),
    "capacity": Entry("bench.capacity:suite", 900, None),
    "inbound": Entry("bench.bench_inbound:suite", 420, 90),  # webhooks via the gateway vs its WhoAmI
    # 10,000 events -> signed deliveries, one Temporal workflow each, vs bare one-activity workflows.
    "outbound": Entry("bench.bench_outbound:suite", 1800, 600),
    # Last: RSS of the embedded stack at idle and after driving it (every earlier suite ran in its
    # own processes, so this suite loads its own stack before reading it again).
    "memory": Entry("bench.memory:suite", 400, None),  # starting the stack alone takes ~1 min
}

# More suites as name=module:function,... (the tests register throwaway suites this way).
for _extra in filter(None, os.environ.get("SALESOPS_BENCH_EXTRA_SUITES", "").split(",")):
    _name, _target = _extra.split("=", 1)
    SUITES[_name] = Entry(_target, 600, 600)


def _load(name: str) -> object:
    module, fn = SUITES[name].target.split(":")
    return getattr(importlib.import_module(module), fn)


def machine() -> dict[str, object]:
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    except OSError:
        pass
    model = ""
    with contextlib.suppress(OSError):
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    return {
        "cores": os.cpu_count(),
        "cpu": model or platform.processor(),
        "memory_mb": mem,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "load_avg_at_start": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("suites", nargs="*", help=f"default: all of {', '.join(SUITES)}")
    parser.add_argument("--quick", action="store_true", help="reduced sizes, under 3 minutes")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child side of run_suite
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        raise SystemExit(run_in_process(_load(args.one), args.quick, args.out))  # type: ignore[arg-type]
    unknown = [s for s in args.suites if s not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {unknown}; known: {list(SUITES)}")
    names = args.suites or list(SUITES)
    started = time.time()
    reports: list[SuiteReport] = []
    RESULTS.mkdir(exist_ok=True)
    suffix = "-quick" if args.quick else ""
    out = RESULTS / f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(started))}{suffix}.json"

    def write() -> dict[str, object]:
        """After every suite: an interrupted run still leaves what it measured."""
        doc = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "seconds": round(time.time() - started, 1),
            "quick": args.quick,
            "complete": len(reports) == len(names),
            "machine": machine(),
            "suites": [r.to_json() for r in reports],
            "markdown": markdown(reports),
        }
        out.write_text(json.dumps(doc, indent=2))
        return doc

    for name in names:
        entry = SUITES[name]
        deadline = entry.quick_deadline_s if args.quick else entry.deadline_s
        if deadline is None:
            reports.append(SuiteReport(name, "skipped", 0.0, error="not in --quick"))
            write()
            continue
        print(f"== {name} (deadline {deadline:.0f} s)", flush=True)
        rep = run_suite(name, args.quick, deadline)
        print(f"   {rep.status} in {rep.seconds:.0f} s {rep.error}", flush=True)
        reports.append(rep)
        write()
    print()
    print(table(reports))
    doc = write()
    if not args.suites:
        (RESULTS / f"latest{suffix}.json").write_text(json.dumps(doc, indent=2))
    print(f"\nwritten to {out.relative_to(RESULTS.parent.parent)} in {doc['seconds']} s")


if __name__ == "__main__":
    main()
