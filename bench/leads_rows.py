"""Shared rows and helpers of the leads benchmarks (bench/leads_*.py, bench_reads, bench_sla):
generated lead rows, their bulk insert and protobuf form, a bounded in-flight runner, percentiles,
process CPU (/proc) and a throwaway PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from datetime import UTC, datetime
from typing import Any, cast


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


def _lead_rows(n: int, seed: int, prefix: str, offset: int = 0, bodies: bool = False) -> list[dict[str, Any]]:
    """`bodies`: each row carries the body a web-form lead is stored with (contact, company, budget,
    description, tags, source: `_lead_body`), as the read benchmarks need; without, an empty one
    (the intake benchmarks read only the dedupe columns, and seed up to 1,000,000 rows)."""
    rnd = random.Random(seed * 1_000_003 + offset)
    now = datetime.now(UTC)
    words = [
        "acme",
        "zenith",
        "sino",
        "east",
        "hua",
        "tech",
        "trade",
        "motor",
        "data",
        "cloud",
        "bio",
        "steel",
    ]
    rows = []
    for i in range(n):
        company = "".join(rnd.choice(words) for _ in range(3)) + str(rnd.randint(1, 999))
        rows.append(
            {
                "tenant_id": "demo",
                "lead_id": f"{prefix}{i:08d}",
                "status": "IN_POOL",
                "display_name": company,
                "phone": f"+86139{seed % 10}{i + offset:07d}",
                "email": f"{prefix.lower()}{i}@example.com",
                "company_norm": company,
                "company_key": company[:2],
                "region": "east/shanghai",
                "language": "zh-CN",
                "channel": "WEB_FORM",
                "source_code": "",
                "grade": "C",
                "score": 0,
                "grading": {},
                "owner_user_id": None,
                "team_path": "",
                "supervisor_user_id": "",
                "pool_id": "default",
                "pool_entry_reason": "NEW_LEAD",
                "assignment_reason": "",
                "assign_time": None,
                "last_decision_id": "",
                "last_activity_time": None,
                "activity_count": 0,
                "sla_state": "NOT_APPLICABLE",
                "sla_grade": "",
                "sla_start": None,
                "sla_due": None,
                "sla_reminder": None,
                "sla_reminded": False,
                "sla_response_time": None,
                "sla_response_activity_id": "",
                "sla_responder": "",
                "sla_business_seconds": None,
                "sla_breach_time": None,
                "sla_breach_action": "",
                "sla_reassignments": 0,
                "needs_attention": False,
                "recycle_warned": False,
                "duplicate_review_needed": False,
                "intake_count": 1,
                "merged_into": "",
                "converted_opportunity_id": "",
                "close_time": None,
                "body": {},  # below, once the row's columns are known
                "version": 1,
                "created_by": "bench",
                "created_at": now,
                "updated_at": now,
            }
        )
        if bodies:
            rows[-1]["body"] = _lead_body(rows[-1], rnd)
    return rows


def _lead_body(row: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    """The body CreateLead stores for such a lead: the Lead message as `services.leads.convert.to_dict`
    writes it, its id left out (intake.py)."""
    from salesops.common.v1 import types_pb2
    from salesops.leads.v1 import enums_pb2, lead_pb2
    from services.leads.convert import to_dict

    lead = lead_pb2.Lead(
        display_name=row["display_name"],
        contact=lead_pb2.LeadContact(
            name=rnd.choice(["李明", "王芳", "张伟", "刘洋", "陈静"]),
            job_title=rnd.choice(["采购经理", "IT 总监", "总经理"]),
            phone=row["phone"],
            email=row["email"],
            wechat_id=f"wx_{row['lead_id'].lower()}",
        ),
        company=lead_pb2.LeadCompany(
            name=row["company_norm"],
            industry=rnd.choice(["manufacturing", "retail", "software"]),
            employee_count=rnd.randint(20, 5000),
            city="上海",
        ),
        source=lead_pb2.LeadSource(
            channel=enums_pb2.LEAD_CHANNEL_WEB_FORM,
            campaign_id=f"cmp-{rnd.randint(1, 40)}",
            landing_url="https://example.com/trial",
        ),
        product_lines=["crm"],
        stated_budget=types_pb2.Money(currency="CNY", amount_minor=rnd.randint(10, 500) * 100_000),
        region=row["region"],
        language_code=row["language"],
        description="希望了解企业版的报价和实施周期; 下季度预算已批。",
        tags=rnd.sample(["trade-show", "inbound", "renewal", "vip", "q3"], 2),
    )
    return to_dict(lead)


async def _insert(db: Any, rows: list[dict[str, Any]], chunk: int = 5000) -> float:
    from sqlalchemy import Table, insert

    from services.leads.store import LeadRow

    table = cast(Table, LeadRow.__table__)
    started = time.perf_counter()
    async with db.engine.begin() as conn:
        if db.is_sqlite:
            for i in range(0, len(rows), chunk):
                await conn.execute(insert(table), rows[i : i + chunk])
        else:
            raw = await conn.get_raw_connection()
            columns = [c.name for c in table.columns]
            import json

            records = [
                tuple(json.dumps(r[c]) if c in ("grading", "body") else r[c] for c in columns) for r in rows
            ]
            await raw.driver_connection.copy_records_to_table("leads", records=records, columns=columns)
    return time.perf_counter() - started


def _lead_pb(row: dict[str, Any]) -> Any:
    from salesops.leads.v1 import enums_pb2, lead_pb2

    return lead_pb2.Lead(
        lead_id=row["lead_id"],
        contact=lead_pb2.LeadContact(name="Li", phone=row["phone"], email=row["email"]),
        company=lead_pb2.LeadCompany(name=row["company_norm"]),
        source=lead_pb2.LeadSource(channel=enums_pb2.LEAD_CHANNEL_WEB_FORM),
        region=row["region"],
    )


async def _in_flight(n: int, concurrency: int, call: Any) -> tuple[float, list[float], int]:
    """`call(i)` for i in range(n) with `concurrency` in flight: (seconds, latencies ms, failures)."""
    latencies: list[float] = []
    failures = 0
    next_i = iter(range(n))

    async def worker() -> None:
        nonlocal failures
        for i in next_i:
            t = time.perf_counter()
            try:
                await call(i)
            except Exception as exc:  # counted and reported, the run goes on
                failures += 1
                if failures <= 3:
                    print(f"   failed call: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
                continue
            latencies.append((time.perf_counter() - t) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, failures
