"""Leads routing benchmark: one decision over 200 rules and 2,000 reps (the last rule matches),
p50/p99 ms, for a team of 100 reps and for the worst case of one team holding all 2,000; baseline:
a bare scan touching every rule and rep once.

    .venv/bin/python -m bench.bench_leads routing
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

from bench.leads_rows import _pct


def routing() -> dict[str, float]:
    from kit.calendar import BusinessCalendar
    from services.leads.domain import routing as r

    now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Shanghai
    cal = BusinessCalendar()
    rules = [
        r.Rule(
            f"r{i}",
            f"east/t{i % 20}",
            r.LEAST_LOADED if i % 2 else r.WRR,
            regions=(f"reg{i}/*",),
            grades=("A", "B"),
        )
        for i in range(199)
    ]
    reps = [
        r.Rep(
            f"u{i}",
            f"east/t{i % 20}",
            capacity=30,
            open_leads=i % 31,
            skills=frozenset({"erp"}) if i % 3 else frozenset(),
            languages=frozenset({"zh-CN"}),
        )
        for i in range(2000)
    ]
    team = r.Rule(
        "last", "east/t7", r.LEAST_LOADED, regions=("east/*",), required_skills=("erp",), match_language=True
    )
    everyone = r.Rule("last", "east", r.LEAST_LOADED, regions=("east/*",), include_sub_teams=True)

    cpu: dict[str, list[float]] = {}

    def run(last: r.Rule, n: int = 500) -> list[float]:
        # Wall time (what a caller waits, scheduling included) and this thread's CPU time (the
        # decision's own cost): on a loaded shared machine the run queue dominates the wall p99.
        lat, spent = [], cpu.setdefault(last.team_path, [])
        for i in range(n):
            lead = r.LeadFacts(f"lead{i}", region="east/sh", grade="A", language="zh-CN")
            t, c = time.perf_counter(), time.thread_time()
            d = r.route(lead, [*rules, last], reps, now, tenant_calendar=cal)
            lat.append((time.perf_counter() - t) * 1000)
            spent.append((time.thread_time() - c) * 1000)
            assert d.winner
        return lat

    def bare(n: int = 500) -> list[float]:
        lat = []
        for _ in range(n):
            t = time.perf_counter()
            hits = sum(1 for rule in rules if rule.regions[0] == "east/*")
            hits += sum(1 for rep in reps if rep.team_path == "east/t7")
            lat.append((time.perf_counter() - t) * 1000)
            assert hits
        return lat

    run(team, 50)  # warm caches
    cpu.clear()
    team_lat, all_lat, bare_lat = run(team), run(everyone), bare()
    return {
        "routing_all2000_cpu_p50_ms": _pct(cpu["east"], 0.5),
        "routing_all2000_cpu_p99_ms": _pct(cpu["east"], 0.99),
        "routing_team100_cpu_p99_ms": _pct(cpu["east/t7"], 0.99),
        "routing_team100_p50_ms": _pct(team_lat, 0.5),
        "routing_team100_p99_ms": _pct(team_lat, 0.99),
        "routing_all2000_p50_ms": _pct(all_lat, 0.5),
        "routing_all2000_p99_ms": _pct(all_lat, 0.99),
        "bare_scan_p50_ms": _pct(bare_lat, 0.5),
        "routing_team100_vs_bare_scan": statistics.median(team_lat) / statistics.median(bare_lat),
    }
