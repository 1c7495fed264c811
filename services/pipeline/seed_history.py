"""Six months of demo history, made through the service's own use cases with past clocks.

Every deal is created, given evidence, moved through the gates, re-categorised, won,
lost or pushed by the same use cases the API runs (`create_deal`, `add_evidence`,
`move_stage`, `update_deal`, `mark_won`, `mark_lost`), each in its own unit of work
at a past time, so the change history, gate reviews and outcome columns are what a
real past would have left. Reps' calls and managers' adjustments go through
`create_submission`; at each lock point of each month a snapshot is taken and the
calls locked, like the weekly schedule does. Actions run in time order across all
deals, so every snapshot sees exactly the deals of its moment.

Idempotent: each action checks the state first (a deal that exists is not created
again, a closed deal is not closed twice; snapshots and locks are keyed), and
actions in the future are left for the real clock.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from kit.auth import Principal
from kit.config import Settings
from kit.db import Database
from kit.errors import NotFound, Unavailable
from kit.resources import Transactions, UnitOfWork
from kit.seeding import SeedClients, SeedUser
from salesops.common.v1.types_pb2 import AttachmentRef, Money
from salesops.pipeline.v1 import deal_pb2, forecast_pb2, stage_model_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import calls, closing, deals, evidence, moves, seed_discipline, snapshots
from services.pipeline.convert import date_proto, enum_value
from services.pipeline.domain import accuracy as acc
from services.pipeline.domain import forecast as f
from services.pipeline.repositories.calls import CallLocks, Submissions
from services.pipeline.repositories.deals import Deals
from services.pipeline.repositories.snapshots import Snapshots
from services.pipeline.store import transactions

log = logging.getLogger("salesops.pipeline.seed")
CURRENCY = "CNY"
MONTHS = 6
LOCK_HOUR_UTC = 12  # 20:00 in Asia/Shanghai, the default snapshot time
STAGES = ("initial_contact", "needs_confirmed", "solution_confirmed")
# Each rep's habit: call = actual x factor (over-callers, sandbaggers, the accurate).
FACTORS = (1.30, 1.02, 0.80, 1.15, 0.97, 1.25, 1.05, 0.90)


def principal(user: SeedUser, tenant: str) -> Principal:
    return Principal(user.user_id, tenant, frozenset(user.roles), user.org, datetime.max.replace(tzinfo=UTC))


Action = Callable[[UnitOfWork], Awaitable[Any]]


@dataclass(order=True)
class Step:
    at: datetime
    order: int
    name: str
    work: Callable[[datetime], Action]


async def _deal(uow: UnitOfWork, deal_id: str) -> Any:
    return await Deals(uow).find(deal_id)


def create(who: Principal, deal: deal_pb2.Deal) -> Callable[[datetime], Action]:
    def at(t: datetime) -> Action:
        async def work(uow: UnitOfWork) -> None:
            if await _deal(uow, deal.deal_id) is None:
                await deals.create_deal(uow, who, deal, t)

        return work

    return at


def attach(who: Principal, deal_id: str, kind: str) -> Callable[[datetime], Action]:
    def at(t: datetime) -> Action:
        async def work(uow: UnitOfWork) -> None:
            row = await _deal(uow, deal_id)
            if row is None or row.status != "OPEN":
                return
            ev = deal_pb2.DealEvidence(
                evidence_id=f"{deal_id}-{kind}",
                evidence_type_id=kind,
                attachment=AttachmentRef(uri=f"demo://{deal_id}/{kind}"),
            )
            await evidence.add_evidence(uow, who, deal_id, ev, t)

        return work

    return at


def move(who: Principal, deal_id: str, stage: str) -> Callable[[datetime], Action]:
    def at(t: datetime) -> Action:
        async def work(uow: UnitOfWork) -> None:
            row = await _deal(uow, deal_id)
            if row is None or row.status != "OPEN" or STAGES.index(row.stage_id) >= STAGES.index(stage):
                return
            moved = await moves.move_stage(uow, who, deal_id, stage, str(row.version), "", t)
            if moved.refused is not None:  # the story attaches the evidence first: a refusal is a bug
                raise moved.refused

        return work

    return at


def update(who: Principal, deal_id: str, **fields: Any) -> Callable[[datetime], Action]:
    """Set the forecast category or push the close date (UpdateDeal with a mask)."""

    def at(t: datetime) -> Action:
        async def work(uow: UnitOfWork) -> None:
            row = await _deal(uow, deal_id)
            if row is None or row.status != "OPEN":
                return
            incoming = deal_pb2.Deal(deal_id=deal_id, etag=str(row.version))
            paths = []
            if "category" in fields:
                incoming.forecast_category = enum_value(types_pb2.ForecastCategory, fields["category"])
                paths.append("forecast_category")
            if "close" in fields:
                if row.expected_close_date == fields["close"]:
                    return
                incoming.expected_close_date.CopyFrom(date_proto(fields["close"]))
                paths.append("expected_close_date")
            if "amount" in fields:
                if row.amount_minor == fields["amount"]:
                    return
                incoming.amount.CopyFrom(_money(fields["amount"]))
                paths.append("amount")
            await deals.update_deal(uow, who, incoming, FieldMask(paths=paths), t)

        return work

    return at


def win(who: Principal, deal_id: str) -> Callable[[datetime], Action]:
    def at(t: datetime) -> Action:
        async def work(uow: UnitOfWork) -> None:
            row = await _deal(uow, deal_id)
            if row is None or row.status != "OPEN":
                return
            ev = deal_pb2.DealEvidence(
                evidence_id=f"{deal_id}-signed_contract",
                evidence_type_id="signed_contract",
                attachment=AttachmentRef(uri=f"demo://{deal_id}/contract"),
            )
            await evidence.add_evidence(uow, who, deal_id, ev, t)
            row = await _deal(uow, deal_id)
            req = pb.MarkWonRequest(deal_id=deal_id, etag=str(row.version), contract_number=f"C-{deal_id}")
            won = await closing.mark_won(uow, who, req, t)
            if won.refused is not None:
                raise won.refused

        return work

    return at


def lose(who: Principal, deal_id: str, category: str, competitor: str = "") -> Callable[[datetime], Action]:
    def at(t: datetime) -> Action:
        async def work(uow: UnitOfWork) -> None:
            row = await _deal(uow, deal_id)
            if row is None or row.status != "OPEN":
                return
            req = pb.MarkLostRequest(
                deal_id=deal_id,
                etag=str(row.version),
                category=enum_value(stage_model_pb2.LostReasonCategory, category),
                competitor=competitor,
            )
            await closing.mark_lost(uow, who, req, t)

        return work

    return at


def submit(who: Principal, s: forecast_pb2.ForecastSubmission) -> Callable[[datetime], Action]:
    def at(t: datetime) -> Action:
        async def work(uow: UnitOfWork) -> None:
            if await Submissions(uow).find(s.submission_id) is None:
                await calls.create_submission(uow, who, s, t, t.date())

        return work

    return at


def lock(admin: Principal, start: date, point: acc.LockPoint) -> Callable[[datetime], Action]:
    """What the weekly schedule does at a lock point: a snapshot, then the calls locked with it."""

    def at(t: datetime) -> Action:
        async def work(uow: UnitOfWork) -> None:
            if await CallLocks(uow).at_point(f.Granularity.MONTH.value, start, point.value) is not None:
                return
            end = f.period_bounds(f.Granularity.MONTH, start)[1]
            request_id = f"history:MONTH:{start.isoformat()}:{point.value}"
            snap = await snapshots.take(
                uow,
                admin,
                f.Granularity.MONTH,
                start,
                request_id,
                t,
                trigger=forecast_pb2.SNAPSHOT_TRIGGER_SCHEDULED,
            )
            await calls.lock_calls(uow, f.Granularity.MONTH, start, end, point, snap.snapshot_id, t, t.date())

        return work

    return at


def quarter_week(admin: Principal) -> Callable[[datetime], Action]:
    """The weekly run's quarter half: the quarter's snapshot that day and its lock points reached."""

    def at(t: datetime) -> Action:
        async def work(uow: UnitOfWork) -> None:
            day, g = t.date(), f.Granularity.QUARTER
            start, end = f.period_bounds(g, day)
            request_id = f"history:QUARTER:{day.isoformat()}"
            trigger = forecast_pb2.SNAPSHOT_TRIGGER_SCHEDULED
            snap = await snapshots.take(uow, admin, g, day, request_id, t, trigger=trigger)
            for point in acc.due_lock_points(start, end, day):
                await calls.lock_calls(uow, g, start, end, point, snap.snapshot_id, t, day)

        return work

    return at


def closing_snapshot(admin: Principal, start: date) -> Callable[[datetime], Action]:
    def at(t: datetime) -> Action:
        async def work(uow: UnitOfWork) -> None:
            request_id = f"history:MONTH:{start.isoformat()}:closed"
            await snapshots.take(
                uow,
                admin,
                f.Granularity.MONTH,
                start,
                request_id,
                t,
                trigger=forecast_pb2.SNAPSHOT_TRIGGER_SCHEDULED,
            )

        return work

    return at


def _month(today: date, back: int) -> date:
    y, m = divmod(today.year * 12 + today.month - 1 - back, 12)
    return date(y, m + 1, 1)


def _at(day: date, hour: int = 2) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _money(minor: int) -> Money:
    return Money(amount_minor=minor, currency=CURRENCY)


def _submission(sid: str, start: date, level: str, amount: int, **kw: Any) -> forecast_pb2.ForecastSubmission:
    s = forecast_pb2.ForecastSubmission(
        submission_id=sid,
        level=enum_value(types_pb2.OrgLevel, level),
        commit_amount=_money(amount),
        best_case_amount=_money(amount * 6 // 5),
        **kw,
    )
    s.period.granularity = types_pb2.PERIOD_GRANULARITY_MONTH
    s.period.start_date.CopyFrom(date_proto(start))
    return s


def plan(users: Sequence[SeedUser], tenant: str, today: date, now: datetime | None = None) -> list[Step]:
    """Every action of six past months, in time order (ties: in the order written); with `now`, also
    the discipline and health history up to it (seed_discipline.py)."""
    admin = principal(next(u for u in users if "admin" in u.roles), tenant)
    reps = [u for u in users if "rep" in u.roles]
    supervisors = {u.org: u for u in users if "supervisor" in u.roles}
    steps: list[Step] = []

    def add(at: datetime, name: str, work: Callable[[datetime], Action]) -> None:
        steps.append(Step(at, len(steps), name, work))

    for back in range(MONTHS, 0, -1):
        start = _month(today, back)
        end = start.replace(day=calendar.monthrange(start.year, start.month)[1])
        nxt = end + timedelta(days=1)
        tag = start.strftime("%Y%m")
        team_calls: dict[str, int] = {}
        for k, rep in enumerate(reps):
            who = principal(rep, tenant)
            base = (2 + k % 4) * 100_000_00 * (10 + back % 3) // 10
            amounts = {"won": base, "lost": base // 2, "best": base * 3 // 4, "push": base // 3}
            actual = amounts["won"] + amounts["best"] * 11 // 10
            for n, (story, amount) in enumerate(amounts.items()):
                deal_id = f"hist-{rep.user_id}-{tag}-{story}"
                # Closing in the last days, after the last-week lock: the locked call is a real forecast.
                close = end - timedelta(days={"won": 1, "lost": 3, "best": 0, "push": 2}[story])
                deal = deal_pb2.Deal(
                    deal_id=deal_id,
                    title=f"{rep.display_name} {start:%b %Y} {story}",
                    customer=deal_pb2.DealCustomer(
                        display_name=f"Demo History Customer {rep.user_id.upper()}-{tag}-{n + 1}",
                        industry="manufacturing",
                    ),
                    owner_user_id=rep.user_id,
                    amount=_money(amount),
                    expected_close_date=date_proto(close),
                )
                born = _at(start - timedelta(days=30 - 2 * n), 3)
                add(born, f"create {deal_id}", create(who, deal))
                add(born + timedelta(days=7), f"minutes {deal_id}", attach(who, deal_id, "meeting_minutes"))
                add(
                    born + timedelta(days=7, hours=1),
                    f"move {deal_id}",
                    move(who, deal_id, "needs_confirmed"),
                )
                if story in ("won", "best"):
                    src = "signed_requirement_confirmation"
                    add(born + timedelta(days=16), f"confirm {deal_id}", attach(who, deal_id, src))
                    add(
                        born + timedelta(days=16, hours=1),
                        f"move {deal_id}",
                        move(who, deal_id, "solution_confirmed"),
                    )
                category = {"won": "COMMIT", "lost": "COMMIT", "best": "BEST_CASE", "push": "PIPELINE"}[story]
                add(
                    born + timedelta(days=17),
                    f"categorise {deal_id}",
                    update(who, deal_id, category=category),
                )
                if story == "lost":
                    reason = ("PRICE", "COMPETITOR", "NO_DECISION")[k % 3]
                    add(
                        _at(close),
                        f"lose {deal_id}",
                        lose(who, deal_id, reason, "Rival Co" if reason == "COMPETITOR" else ""),
                    )
                elif story == "push":
                    # Pushed out between the locks (a PUSHED_OUT flow), then won next month (its actual).
                    add(
                        _at(start + timedelta(days=19)),
                        f"push {deal_id}",
                        update(who, deal_id, close=nxt + timedelta(days=11)),
                    )
                    add(_at(nxt + timedelta(days=9)), f"win {deal_id}", win(who, deal_id))
                else:
                    if story == "best":  # the customer widened the order mid-month (an AMOUNT_UP flow)
                        raised = update(who, deal_id, amount=amount * 11 // 10)
                        add(_at(start + timedelta(days=12)), f"raise {deal_id}", raised)
                    add(_at(close), f"win {deal_id}", win(who, deal_id))
            carried = (2 + k % 4) * 100_000_00 * (10 + (back + 1) % 3) // 10 // 3 if back < MONTHS else 0
            noise = 1 + ((back * 7 + k * 3) % 5 - 2) / 50  # months differ a little
            call = int((actual + carried) * FACTORS[k % len(FACTORS)] * noise)
            sid = f"hist-call-{rep.user_id}-{tag}"
            add(
                _at(start + timedelta(days=2)),
                f"call {sid}",
                submit(who, _submission(sid, start, "REP", call)),
            )
            team_calls[rep.org] = team_calls.get(rep.org, 0) + call
            sup = supervisors.get(rep.org)
            if sup is not None and FACTORS[k % len(FACTORS)] >= 1.25 and back % 2 == 0:
                # The supervisor tempers an over-caller (some months): the adjustment's value shows.
                aid = f"hist-adj-{rep.user_id}-{tag}"
                adjusted = _submission(
                    aid,
                    start,
                    "REP",
                    int((actual + carried) * 1.05),
                    kind=forecast_pb2.SUBMISSION_KIND_ADJUSTMENT,
                    subject_user_id=rep.user_id,
                    note="tempered: two COMMIT deals lack a decision date",
                )
                add(_at(start + timedelta(days=4)), f"adjust {aid}", submit(principal(sup, tenant), adjusted))
        for org, total in team_calls.items():
            sup = supervisors.get(org)
            if sup is None or len(f.segments(org)) > f.Level.TEAM.value:
                continue
            level = f.Level(len(f.segments(org))).name
            sid = f"hist-unit-{org.replace('/', '-')}-{tag}"
            unit = _submission(sid, start, level, total * 95 // 100, org_path=org)
            add(_at(start + timedelta(days=5)), f"unit call {sid}", submit(principal(sup, tenant), unit))
        for point, day in acc.lock_dates(start, end).items():
            add(_at(day, LOCK_HOUR_UTC), f"lock {tag} {point.value}", lock(admin, start, point))
            add(_at(day, LOCK_HOUR_UTC), f"quarter {day}", quarter_week(admin))
        # The month as it closed (wins and losses as flows from the last lock's snapshot).
        add(_at(nxt, 1), f"closing snapshot {tag}", closing_snapshot(admin, start))
    if now is not None:
        seed_discipline.plan(add, reps, tenant, now)
    return sorted(steps)


async def seed_history(
    db: Database, tenant: str, users: Sequence[SeedUser], now: datetime | None = None
) -> int:
    """Run every past action of the plan not yet done; returns how many ran."""
    at_now = now or datetime.now(UTC)
    tx: Transactions = transactions(db)
    steps = plan(users, tenant, at_now.date(), at_now)
    last = _month(at_now.date(), 1)
    async with tx.read(tenant) as uow:  # last month's closing snapshot is the last past step: all done
        if await Snapshots(uow).by_request(f"history:MONTH:{last.isoformat()}:closed") is not None:
            return 0
    ran = 0
    for step in steps:
        if step.at >= at_now:
            continue
        try:
            await _run(tx, tenant, step)
        except NotFound:  # a member without a profile yet (seeded by seed.py first): skip the step
            continue
        ran += 1
    return ran


async def _run(tx: Transactions, tenant: str, step: Step, attempts: int = 20) -> None:
    """One step; on SQLite the running service writes too (relay, timers): a busy database is waited
    out rather than failing `make run` (each step checks the state, so a retry is safe)."""
    for attempt in range(attempts):
        try:
            await tx.run(tenant, step.work(step.at))
            return
        except (OperationalError, Unavailable) as exc:
            busy = "locked" in str(exc) or getattr(exc, "reason", "") == "DATABASE_BUSY"
            if not busy or attempt == attempts - 1:
                raise
            log.info("demo history: database busy at %s, retrying", step.name)
            await asyncio.sleep(min(0.5 * (attempt + 1), 5.0))


async def demo_history(clients: SeedClients) -> None:
    """`make run`: the demo tenant's history, in the pipeline service's own database (the same
    settings the service reads). Skipped when that database is not there (another var dir)."""
    url = make_url(Settings.from_env("pipeline").database_url)
    exists = bool(url.database) and await asyncio.to_thread(Path(url.database or ".").exists)
    if url.get_backend_name() == "sqlite" and not exists:
        log.warning("pipeline database %s not found: demo history skipped", url.database)
        return
    db = Database(url.render_as_string(hide_password=False))
    try:
        ran = await seed_history(db, clients.tenant, clients.users)
        log.info("demo history: %d past steps written", ran)
    finally:
        await db.dispose()


__all__ = ["MONTHS", "demo_history", "plan", "principal", "seed_history"]
