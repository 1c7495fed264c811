"""Benchmarks of the leads service, each against a bare baseline measured in the same run; each
lives in its own module (the shared rows and helpers in bench/leads_rows.py):

- routing: bench/leads_routing.py (one routing decision over 200 rules and 2,000 reps).
- intake: bench/leads_intake.py (CreateLead over gRPC to the leads process, and ImportLeads).
- mixed: bench/leads_mixed.py (SQLite GetLead readers beside CreateLead writers).

The SLA timers benchmark is bench/bench_sla.py (`python -m bench.bench_sla [--quick]`).
This module only runs the ones named, printing their figures:

    .venv/bin/python -m bench.bench_leads [routing|intake|mixed]
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench.leads_intake import intake
from bench.leads_mixed import mixed
from bench.leads_routing import routing

SUITES: dict[str, Callable[[], dict[str, float]]] = {"routing": routing, "intake": intake, "mixed": mixed}


if __name__ == "__main__":
    if unknown := [name for name in sys.argv[1:] if name not in SUITES]:
        sys.exit(f"unknown {unknown}; usage: python -m bench.bench_leads [{'|'.join(SUITES)}]")
    for name in sys.argv[1:] or list(SUITES):
        for key, value in SUITES[name]().items():
            print(f"{name}.{key:<36} {value:12.3f}", flush=True)
