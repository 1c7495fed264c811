"""Demo history of the leads service: high-intent leads received one to three weeks ago that nobody
has touched since, so the managers' "dormant high-intent leads" list has something true to show.

Each lead goes through the intake use case (`intake.create`: validation, dedupe, grading by the
tenant's rules, routing by its routing rules) at its past receive time, in its own unit of work,
exactly as a lead arriving then would have. Nothing is written afterwards: what the lead watch
does with them now (SLA breach, escalation, recycling to the pool) is the running service's own
work. Idempotent: each lead's intake id is fixed, so a second run replays the recorded intake.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from kit.auth import Principal
from kit.config import Settings
from kit.db import Database
from kit.resources import UnitOfWork
from kit.seeding import SeedClients, SeedUser
from salesops.common.v1.types_pb2 import Money
from salesops.leads.v1 import enums_pb2, lead_pb2
from services.leads import intake
from services.leads.store import transactions

log = logging.getLogger("salesops.leads.seed")
# (company, days since it arrived, call centre (A: 70 points) or web form (B: 55 points)).
NEGLECTED: tuple[tuple[str, int, bool], ...] = (
    ("Hangzhou Precision Castings", 9, True),
    ("Ningbo Harbour Logistics", 12, True),
    ("Suzhou Bright Textiles", 16, False),
    ("Wuxi Green Energy", 19, True),
    ("Changzhou Smart Packaging", 22, False),
    ("Nantong Marine Systems", 26, False),
)


def _lead(n: int, company: str, call_centre: bool) -> lead_pb2.Lead:
    lead = lead_pb2.Lead(
        lead_id=f"demo-dormant-{n + 1}",
        contact=lead_pb2.LeadContact(name=f"Demo Contact {n + 1}", phone=f"139 5550 {1000 + n}"),
        company=lead_pb2.LeadCompany(name=company),
        region="east/shanghai",
        stated_budget=Money(amount_minor=(40 + 10 * n) * 10_000_00, currency="CNY"),
    )
    lead.source.channel = (
        enums_pb2.LEAD_CHANNEL_CALL_CENTER if call_centre else enums_pb2.LEAD_CHANNEL_WEB_FORM
    )
    return lead


async def seed_history(db: Database, tenant: str, users: Sequence[SeedUser], now: datetime) -> int:
    """Receive the neglected leads at their past times (a recorded intake replays); how many."""
    sup = next(u for u in users if "supervisor" in u.roles)
    who = Principal(sup.user_id, tenant, frozenset(sup.roles), sup.org, datetime.max.replace(tzinfo=UTC))
    tx = transactions(db)
    for n, (company, days, call_centre) in enumerate(NEGLECTED):
        lead = _lead(n, company, call_centre)
        at = now - timedelta(days=days, hours=n)

        async def receive(uow: UnitOfWork, lead: lead_pb2.Lead = lead, at: datetime = at) -> None:
            await intake.create(uow, who, lead, at, intake_id=lead.lead_id)

        await tx.run(tenant, receive)
    return len(NEGLECTED)


async def demo_history(clients: SeedClients) -> None:
    """`make run`: the neglected leads, in the leads service's own database (the settings it reads)."""
    url = make_url(Settings.from_env("leads").database_url)
    exists = bool(url.database) and await asyncio.to_thread(Path(url.database or ".").exists)
    if url.get_backend_name() == "sqlite" and not exists:
        log.warning("leads database %s not found: demo history skipped", url.database)
        return
    db = Database(url.render_as_string(hide_password=False))
    try:
        made = await seed_history(db, clients.tenant, clients.users, datetime.now(UTC))
        log.info("demo history: %d neglected leads in place", made)
    finally:
        await db.dispose()


__all__ = ["NEGLECTED", "demo_history", "seed_history"]
