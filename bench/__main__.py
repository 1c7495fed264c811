"""`make bench`: every benchmark, each against a bare baseline measured in the same run.

Results print as a table and are written to bench/results/<timestamp>.json.
Figures are ratios first: the machines are shared and absolute numbers drift.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench import (
    bench_events,
    bench_gateway,
    bench_leads,
    bench_notify,
    bench_pipeline,
    capacity,
    grpc_overhead,
)

RESULTS = Path(__file__).resolve().parent / "results"


SUITES = {
    "grpc_overhead": grpc_overhead.run,
    "events": bench_events.measure,
    "notify": bench_notify.measure,
    "gateway": bench_gateway.run,
    "leads_routing": bench_leads.routing,
    "leads_intake": bench_leads.intake,
    "leads_sla": bench_leads.sla,
    "pipeline": bench_pipeline.measure,
    "capacity": capacity.run,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("suites", nargs="*", choices=[*SUITES, []], help="default: all")
    names = parser.parse_args().suites or list(SUITES)
    report: dict[str, dict[str, float]] = {}
    for name in names:
        print(f"== {name}", flush=True)
        report[name] = SUITES[name]()
        for key, value in report[name].items():
            print(f"   {key:<32} {value:12.3f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"written to {out.relative_to(RESULTS.parent.parent)}")


if __name__ == "__main__":
    main()
