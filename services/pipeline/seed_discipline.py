"""The demo history's discipline and health: deals left alone, the weekly process-health runs, and
the tenant timer's sweep, through the service's own use cases with past clocks (seed_history.py
runs these steps in time order with the rest of the history).

- Stale deals (some reps): qualified weeks ago, then never updated. Nobody touched them in the
  weekly window, so the update-discipline rule freezes them, and they sit in their stage past its
  dwell limit (the model's, or the team's p90 where tighter), so the dwell rule flags them.
- Slow deals (other reps): updated every week (never frozen), but stuck in one stage past its limit.
- The weekly process-health run (`health.run_due`, Monday 00:30 tenant time) for every past week,
  so each team has its baseline and the +/- 2 sigma rule flags what the history makes stand out.
- The timer's sweep as it would run now (`discipline.freeze_overdue`, `discipline.flag_dwell`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from kit.resources import UnitOfWork
from kit.seeding import SeedUser
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import deal_pb2
from services.pipeline import discipline, health, pipeline_settings
from services.pipeline.convert import date_proto
from services.pipeline.domain.discipline import week_start

WEEKS = 26  # about the six months of seed_history.MONTHS
Add = Callable[[datetime, str, Callable[[datetime], Callable[[UnitOfWork], Any]]], None]


def _deal(rep: SeedUser, story: str, amount: int, close: date) -> deal_pb2.Deal:
    return deal_pb2.Deal(
        deal_id=f"demo-{story}-{rep.user_id}",
        title=f"{rep.display_name} {story} deal",
        customer=deal_pb2.DealCustomer(
            display_name=f"Demo Quiet Customer {rep.user_id.upper()}-{story}", industry="manufacturing"
        ),
        owner_user_id=rep.user_id,
        amount=Money(amount_minor=amount, currency="CNY"),
        expected_close_date=date_proto(close),
    )


def health_run() -> Callable[[datetime], Callable[[UnitOfWork], Any]]:
    def at(t: datetime) -> Callable[[UnitOfWork], Any]:
        async def work(uow: UnitOfWork) -> None:
            await health.run_due(uow, t)

        return work

    return at


def sweep() -> Callable[[datetime], Callable[[UnitOfWork], Any]]:
    """What the tenant's discipline timer does when it wakes: freeze the overdue, flag the dwelling."""

    def at(t: datetime) -> Callable[[UnitOfWork], Any]:
        async def work(uow: UnitOfWork) -> None:
            await discipline.freeze_overdue(uow, t)
            await discipline.flag_dwell(uow, t)

        return work

    return at


def plan(add: Add, reps: Sequence[SeedUser], tenant: str, now: datetime) -> None:
    """The steps, handed to `add` (seed_history's step list)."""
    from services.pipeline import seed_history as h  # the history's step builders (it imports us)

    for k, rep in enumerate(reps):
        who = h.principal(rep, tenant)
        amount = (3 + k % 3) * 100_000_00
        if k % 3 == 0:  # stale: qualified four weeks ago, then silence
            born = now - timedelta(days=29, hours=k)
            deal = _deal(rep, "stale", amount, (now + timedelta(days=40)).date())
            add(born, f"create {deal.deal_id}", h.create(who, deal))
            add(
                born + timedelta(days=2),
                f"minutes {deal.deal_id}",
                h.attach(who, deal.deal_id, "meeting_minutes"),
            )
            add(
                born + timedelta(days=2, hours=1),
                f"move {deal.deal_id}",
                h.move(who, deal.deal_id, "needs_confirmed"),
            )
        elif k % 3 == 1:  # slow: confirmed requirements five weeks ago, updated weekly since, no further
            born = now - timedelta(days=45, hours=k)
            deal = _deal(rep, "slow", amount, (now + timedelta(days=50)).date())
            add(born, f"create {deal.deal_id}", h.create(who, deal))
            add(
                born + timedelta(days=1),
                f"minutes {deal.deal_id}",
                h.attach(who, deal.deal_id, "meeting_minutes"),
            )
            add(
                born + timedelta(days=1, hours=1),
                f"move {deal.deal_id}",
                h.move(who, deal.deal_id, "needs_confirmed"),
            )
            src = "signed_requirement_confirmation"
            add(born + timedelta(days=10), f"confirm {deal.deal_id}", h.attach(who, deal.deal_id, src))
            moved = born + timedelta(days=10, hours=1)
            add(moved, f"move {deal.deal_id}", h.move(who, deal.deal_id, "solution_confirmed"))
            week = 1
            while moved + timedelta(days=5 * week) < now - timedelta(hours=6):
                raised = amount + week * 10_000_00  # the weekly update: the customer widened the scope
                at = moved + timedelta(days=5 * week)
                add(at, f"update {deal.deal_id} {week}", h.update(who, deal.deal_id, amount=raised))
                week += 1
    zone = ZoneInfo(pipeline_settings.DEFAULTS.time_zone)
    this_week = week_start(now.astimezone(zone).date())
    for back in range(WEEKS, 0, -1):
        monday = this_week - timedelta(days=7 * back)
        run = datetime.combine(monday + timedelta(days=7), health.RUN_AT, tzinfo=zone).astimezone(UTC)
        add(run, f"health {monday}", health_run())
    add(now - timedelta(seconds=1), "discipline sweep", sweep())
