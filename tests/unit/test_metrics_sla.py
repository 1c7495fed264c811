"""SLA reminders and breaches are counted where the leads watch applies them (Temporal's
time-skipping server, the real watch workflow and activities, SQLite)."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import REGISTRY
from temporalio.testing import WorkflowEnvironment

from kit.db import Database
from services.leads import consumers
from tests.leads.test_sla_workflow import create_at, next_friday_1750, skip_to, wait_events, world

__all__ = ["world"]  # the fixture, shared with the workflow tests


def _count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_reminder_and_breach_are_counted_once(world: tuple[Database, WorkflowEnvironment, str]) -> None:
    db, env, queue = world
    reminders0 = _count("salesops_sla_reminders_total")
    breaches0 = _count("salesops_sla_breaches_total", action="REASSIGN_NEXT_REP")
    start = next_friday_1750(await env.get_current_time())
    row = await create_at(db, "M1", start, "13800000077")
    assert row.sla_due is not None and row.sla_reminder is not None
    await consumers.poke(env.client, queue, "demo", "M1")
    await skip_to(env, row.sla_reminder + timedelta(seconds=1))
    assert len(await wait_events(db, "leads.SlaReminderDue", 1)) == 1
    assert _count("salesops_sla_reminders_total") - reminders0 == 1
    assert _count("salesops_sla_breaches_total", action="REASSIGN_NEXT_REP") == breaches0
    await skip_to(env, row.sla_due + timedelta(seconds=1))
    assert len(await wait_events(db, "leads.SlaBreached", 1)) == 1
    assert _count("salesops_sla_breaches_total", action="REASSIGN_NEXT_REP") - breaches0 == 1
    assert _count("salesops_sla_reminders_total") - reminders0 == 1  # the breach is not a second reminder
