"""Verdict figures (bench.verdict) of the leads routing, intake and mixed benchmarks
(bench/leads_routing.py, leads_intake.py, leads_mixed.py).

Kept apart from those modules, each of which reports a dict of floats: this maps its keys (missing
keys read as "no data", so a change there shows in the table instead of breaking the run).
"""

from __future__ import annotations

from bench.verdict import AT_LEAST, AT_MOST, Figure, Goal, pick


def routing(quick: bool) -> list[Figure]:
    from bench import leads_routing

    f = leads_routing.routing()
    return [
        pick(f, "routing_all2000_p99_ms", "ms", name="routing, 2,000 reps in one team, p99",
             baseline="bare_scan_p50_ms", goal=Goal(2.0, AT_MOST, on="value")),
        pick(f, "routing_team100_p99_ms", "ms", name="routing, team of 100 of 2,000 reps, p99",
             baseline="bare_scan_p50_ms", goal=Goal(2.0, AT_MOST, on="value")),
        pick(f, "routing_all2000_cpu_p99_ms", "ms", name="routing, 2,000 reps in one team, CPU p99",
             note="the decision's own CPU time (thread time): the wall p99 above adds the run queue"),
        pick(f, "routing_team100_cpu_p99_ms", "ms", name="routing, team of 100 of 2,000 reps, CPU p99"),
    ]  # fmt: skip


def intake(quick: bool) -> list[Figure]:
    from bench import leads_intake

    f = leads_intake.intake(quick)
    out: list[Figure] = []
    for db, label in (("sqlite", "SQLite"), ("pg", "PostgreSQL")):
        if f"{db}_intake_leads_per_s" not in f:
            continue
        existing = int(f.get(f"{db}_existing_leads", 0))
        out += [
            pick(f, f"{db}_intake_leads_per_s", "leads/s",
                 name=f"{label} CreateLead, {existing:,} leads, 16 in flight",
                 baseline=f"{db}_bare_commit_rows_per_s", goal=Goal(0.5, AT_LEAST),
                 failed=[f"{db}_intake_failed", f"{db}_bare_commit_failed"],
                 note=f"p50 {f.get(f'{db}_intake_p50_ms', float('nan')):.0f} ms; leads process (its own, "
                      f"as make run) CPU {f.get(f'{db}_intake_server_cpu_ms_per_lead', float('nan')):.2f} ms "
                      f"a lead vs {f.get(f'{db}_bare_commit_cpu_ms_per_row', float('nan')):.2f} ms a bare row; "
                      f"{f.get(f'{db}_routed_to_rep_share', float('nan')):.0%} routed to "
                      f"{f.get(f'{db}_routed_reps', float('nan')):.0f} reps; "
                      f"load {f.get(f'{db}_load_average', float('nan')):.1f}"),
            pick(f, f"{db}_intake_p99_ms", "ms", name=f"{label} CreateLead p99",
                 baseline=f"{db}_bare_commit_p99_ms", failed=[f"{db}_intake_failed"]),
            pick(f, f"{db}_import_validate_1000_s", "s", name=f"{label} ImportLeads 1,000 validate-only",
                 goal=Goal(5.0, AT_MOST, on="value"), failed=[f"{db}_import_validate_failed"],
                 note=f"leads process CPU {f.get(f'{db}_import_validate_cpu_s', float('nan')):.2f} s"),
            pick(f, f"{db}_import_real_1000_s", "s", name=f"{label} ImportLeads 1,000",
                 goal=Goal(5.0, AT_MOST, on="value"), failed=[f"{db}_import_real_failed"],
                 note=f"leads process CPU {f.get(f'{db}_import_real_cpu_s', float('nan')):.2f} s"),
        ]  # fmt: skip
    return out


def mixed(quick: bool) -> list[Figure]:
    from bench import leads_mixed

    f = leads_mixed.mixed()
    failed = ["failed_requests"]
    return [
        pick(f, "read_with_4_writers_p99_ms", "ms", name="SQLite GetLead p99, 16 readers beside 4 writers",
             baseline="read_beside_writers_elsewhere_p99_ms", goal=Goal(2.0, AT_MOST), failed=failed,
             note="goal set here: readers never wait for the writer; baseline: the same reads beside the "
             "same writers on another database file (same CPU, no shared lock); reads alone p99 "
             f"{f.get('read_alone_p99_ms', float('nan')):.0f} ms"),
        pick(f, "writers_64_creates_per_s", "leads/s", name="SQLite CreateLead, 64 concurrent writers",
             failed=failed, note=f"p99 {f.get('writers_64_p99_ms', float('nan')):.0f} ms; zero failures expected"),
    ]  # fmt: skip
