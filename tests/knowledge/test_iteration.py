"""The monthly iteration through the API on SQLite and PostgreSQL: a hand-worked month, the
proposal, apply (idempotent, audited, events with the report id), dry runs, access and tenants;
the schedule's workflow on the time-skipping server and the per-tenant schedule's spec."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from google.type import date_pb2  # type: ignore[import-untyped]
from sqlalchemy import select, update

from kit import temporal
from kit.db import Database
from kit.events import parse_envelope, unpack_payload
from kit.migrations import upgrade_to_head
from salesops.knowledge.v1 import events_pb2, settings_pb2
from salesops.knowledge.v1 import iteration_pb2 as it
from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1.sop_card_pb2 import CardStatus
from salesops.knowledge.v1.usage_pb2 import FeedbackRating, FeedbackReasonCategory
from services.knowledge import iteration_activities, knowledge_settings
from services.knowledge.iteration_activities import IterationActivities, ensure_tenant_schedule, schedule_id
from services.knowledge.iteration_workflows import (
    EnsureIterationSchedulesWorkflow,
    MonthlyInput,
    MonthlyIterationWorkflow,
    RunResult,
)
from services.knowledge.store import SopCardStatusChangeRow, SopCardVersionRow, outbox, transactions
from services.knowledge.store_outcomes import CardLiftStatRow, LiftCellRow
from services.knowledge.store_uses import CardUseRow, FeedbackDutyRow
from tests.knowledge.conftest import Knowledge
from tests.knowledge.helpers import card, publish

SHANGHAI = ZoneInfo("Asia/Shanghai")
FULLY = FeedbackRating.FEEDBACK_RATING_FULLY
NA = FeedbackRating.FEEDBACK_RATING_NOT_APPLICABLE
A = it.IterationAction


def last_month(now: datetime | None = None) -> tuple[int, int, datetime]:
    """The tenant's previous month and an instant inside it (its 5th, noon, Asia/Shanghai)."""
    today = (now or datetime.now(UTC)).astimezone(SHANGHAI).date()
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return year, month, datetime(year, month, 5, 12, tzinfo=SHANGHAI).astimezone(UTC)


class Month:
    """Writes uses and rated duties straight into the uses tables (the month is in the past)."""

    def __init__(self, db: Database, tenant: str, at: datetime) -> None:
        self.db, self.tenant, self.at, self.n = db, tenant, at, 0
        self.rows: list[Any] = []

    async def commit(self) -> None:
        async with self.db.session(self.tenant) as s:
            s.add_all(self.rows)
            await s.commit()
        self.rows = []

    def use(self, card_id: str, user: str, rating: int = 0, category: int = 0) -> None:
        self.n += 1
        uid = f"use-{self.n:04d}"
        self.rows.append(
            CardUseRow(
                tenant_id=self.tenant,
                use_id=uid,
                card_id=card_id,
                card_version=1,
                user_id=user,
                org_path="east/team-a",
                deal_id=f"deal-{self.n}",
                used_at=self.at,
                recorded_at=self.at,
                duty_id=uid,
                request_digest="x",
            )
        )
        self.rows.append(
            FeedbackDutyRow(
                tenant_id=self.tenant,
                duty_id=uid,
                use_id=uid,
                card_id=card_id,
                card_version=1,
                user_id=user,
                deal_id=f"deal-{self.n}",
                used_at=self.at,
                due_at=self.at + timedelta(hours=48),
                state=3 if rating else 1,
                rating=rating,
                reason_category=category,
                recorded_at=self.at + timedelta(hours=1) if rating else None,
                late=False,
                created_at=self.at,
                updated_at=self.at,
                version=1,
            )
        )


async def backdate(db: Database, tenant: str, card_ids: list[str], to: datetime) -> None:
    async with db.session(tenant) as s:
        await s.execute(
            update(SopCardVersionRow).where(SopCardVersionRow.card_id.in_(card_ids)).values(published_at=to)
        )
        await s.commit()


async def hand_worked_month(k: Knowledge, tenant: str = "demo") -> tuple[int, int]:
    """20 active reps. popular: all 20 use it, 10 rate fully. bad: 1 rep, 1 fully + 5 not applicable
    (usage 5 %, negative 83 %): retired. meh: 10 reps, 3 fully + 2 not applicable (40 %): the only
    criticised card left: back to review. lonely: the only retail card, as bad as `bad`: kept for its
    cell. fresh: published this month: exempt."""
    for cid, industry in (("popular", "mfg"), ("bad", "mfg"), ("meh", "mfg"), ("lonely", "retail")):
        await publish(k, card(cid, industries=[industry]), tenant=tenant)
    await publish(k, card("fresh"), tenant=tenant)
    year, month, at = last_month()
    await backdate(k.db, tenant, ["popular", "bad", "meh", "lonely"], at - timedelta(days=60))
    await backdate(k.db, tenant, ["fresh"], at)
    m = Month(k.db, tenant, at)
    reps = [f"rep-{i:02d}" for i in range(20)]
    for i, rep in enumerate(reps):
        m.use("popular", rep, FULLY if i < 10 else 0)
    m.use("bad", "rep-00", FULLY)
    for _ in range(5):
        m.use("bad", "rep-00", NA, FeedbackReasonCategory.FEEDBACK_REASON_CATEGORY_OUTDATED)
    for i, rep in enumerate(reps[:10]):
        m.use("meh", rep, FULLY if i < 3 else NA if i < 5 else 0)
    for _ in range(5):
        m.use("lonely", "rep-01", NA)
    m.use("fresh", "rep-02", NA)
    await m.commit()
    # The lift cache (outcomes): popular used on 20 of the cell's 40 closed deals, 12 won, vs 4 of 20.
    async with k.db.session(tenant) as session:
        session.add(
            LiftCellRow(
                tenant_id=tenant, industry="mfg", stage_id="negotiation", closed=40, won=16, refreshed_at=at
            )
        )
        session.add(
            CardLiftStatRow(
                tenant_id=tenant,
                industry="mfg",
                stage_id="negotiation",
                card_id="popular",
                used_closed=20,
                used_won=12,
            )
        )
        session.add(
            CardLiftStatRow(
                tenant_id=tenant,
                industry="mfg",
                stage_id="negotiation",
                card_id="meh",
                used_closed=3,
                used_won=1,
            )
        )
        await session.commit()
    mask = FieldMask(paths=["iteration.usage_basis", "iteration.apply_mode"])
    s = settings_pb2.KnowledgeSettings(
        iteration=settings_pb2.IterationPolicy(
            usage_basis=settings_pb2.USAGE_BASIS_AUDIENCE,
            apply_mode=settings_pb2.ITERATION_APPLY_MODE_PROPOSE,
        )
    )
    await k.call("UpdateKnowledgeSettings", pb.UpdateKnowledgeSettingsRequest(settings=s, update_mask=mask))
    return year, month


def events(rows: list[Any], kind: str) -> list[Any]:
    types = {
        "knowledge.CardRetired": events_pb2.CardRetired,
        "knowledge.CardReturnedToReview": events_pb2.CardReturnedToReview,
        "knowledge.MonthlyIterationCompleted": events_pb2.MonthlyIterationCompleted,
    }
    out: list[Any] = []
    for row in rows:
        env = parse_envelope(row.envelope)
        if env.type == kind:
            out.append(unpack_payload(env, types[kind]))
    return out


async def outbox_rows(db: Database) -> list[Any]:
    async with db.system_session() as s:
        return list((await s.execute(select(outbox))).all())


async def test_month_proposed_then_applied_once_with_history_and_events(knowledge: Knowledge) -> None:
    k = knowledge
    year, month = await hand_worked_month(k)
    run = pb.RunMonthlyIterationRequest(month=date_pb2.Date(year=year, month=month))
    await k.fails(grpc.StatusCode.PERMISSION_DENIED, "RunMonthlyIteration", run, "sup-a")
    report = (await k.call("RunMonthlyIteration", run)).report
    assert report.state == it.ITERATION_REPORT_STATE_PROPOSED
    assert (report.month.year, report.month.month) == (year, month)
    assert list(report.retired_card_ids) == ["bad"]
    assert list(report.returned_to_review_card_ids) == ["meh"]
    rows = {r.card_id: r for r in report.cards}
    assert rows["bad"].action == A.ITERATION_ACTION_RETIRE
    assert rows["bad"].action_reason == "usage 5 % < 15 % and negative 83 % > 40 %"
    assert rows["bad"].top_reason.category == FeedbackReasonCategory.FEEDBACK_REASON_CATEGORY_OUTDATED
    assert (rows["bad"].feedback_fully, rows["bad"].feedback_not_applicable) == (1, 5)
    assert rows["lonely"].action == A.ITERATION_ACTION_KEEP
    assert "only published card of retail x negotiation" in rows["lonely"].action_reason
    assert rows["fresh"].action == A.ITERATION_ACTION_EXEMPT
    assert rows["popular"].action == A.ITERATION_ACTION_KEEP and rows["popular"].usage_rate == 1.0
    # Lift 60 % - 20 % = 40 points where both sides have 10 deals; "not enough data" leaves it unset.
    assert round(rows["popular"].win_rate_lift_pp, 6) == 40.0
    assert not rows["meh"].HasField("win_rate_lift_pp") and not rows["bad"].HasField("win_rate_lift_pp")
    assert report.cards_considered == 4 and report.uses == 20 + 6 + 10 + 5 + 1
    assert report.rep_adoption_rate == 1.0 and report.feedback_count == 10 + 6 + 5 + 5 + 1
    # Nothing changed yet: a proposal only.
    got = (await k.call("GetSopCard", pb.GetSopCardRequest(card_id="bad"))).card
    assert got.status == CardStatus.CARD_STATUS_PUBLISHED
    # Supervisors read reports; reps do not; another tenant does not find it.
    get = pb.GetIterationReportRequest(report_id=report.report_id)
    assert (await k.call("GetIterationReport", get, "sup-a")).report.report_id == report.report_id
    await k.fails(grpc.StatusCode.PERMISSION_DENIED, "GetIterationReport", get, "rep-a1")
    await k.fails(grpc.StatusCode.NOT_FOUND, "GetIterationReport", get, tenant="acme")
    apply = pb.ApplyIterationReportRequest(report_id=report.report_id)
    await k.fails(grpc.StatusCode.NOT_FOUND, "ApplyIterationReport", apply, tenant="acme")
    await k.fails(grpc.StatusCode.PERMISSION_DENIED, "ApplyIterationReport", apply, "sup-a")

    applied = (await k.call("ApplyIterationReport", apply)).report
    assert applied.state == it.ITERATION_REPORT_STATE_APPLIED and applied.applied_by == "admin"
    assert list(applied.retired_card_ids) == ["bad"] and list(applied.returned_to_review_card_ids) == ["meh"]
    statuses = {
        cid: (await k.call("GetSopCard", pb.GetSopCardRequest(card_id=cid))).card.status
        for cid in ("bad", "meh", "lonely", "popular")
    }
    assert statuses == {
        "bad": CardStatus.CARD_STATUS_RETIRED,
        "meh": CardStatus.CARD_STATUS_IN_REVIEW,
        "lonely": CardStatus.CARD_STATUS_PUBLISHED,
        "popular": CardStatus.CARD_STATUS_PUBLISHED,
    }
    # Audited: the card's history keeps who and why.
    history = (
        await k.call("ListSopCardStatusChanges", pb.ListSopCardStatusChangesRequest(card_id="bad"))
    ).status_changes
    assert history[-1].actor_user_id == "admin"
    assert history[-1].reason == f"monthly iteration {year:04d}-{month:02d}: {rows['bad'].action_reason}"
    retired = events(await outbox_rows(k.db), "knowledge.CardRetired")
    assert [(e.card_id, e.iteration_report_id) for e in retired] == [("bad", report.report_id)]
    returned = events(await outbox_rows(k.db), "knowledge.CardReturnedToReview")
    assert [(e.card_id, e.iteration_report_id) for e in returned] == [("meh", report.report_id)]
    completed = events(await outbox_rows(k.db), "knowledge.MonthlyIterationCompleted")
    assert [e.state for e in completed] == [it.ITERATION_REPORT_STATE_PROPOSED]

    # Idempotent: applying again, or running the month again, changes nothing.
    again = (await k.call("ApplyIterationReport", apply)).report
    assert again.apply_time == applied.apply_time
    rerun = (await k.call("RunMonthlyIteration", run)).report
    assert rerun.report_id == report.report_id and rerun.state == it.ITERATION_REPORT_STATE_APPLIED
    async with k.db.session("demo") as s:
        changes = (
            await s.scalars(select(SopCardStatusChangeRow).where(SopCardStatusChangeRow.card_id == "bad"))
        ).all()
    assert len(changes) == 4  # created, submitted, published, retired: not retired twice
    listed = (await k.call("ListIterationReports", pb.ListIterationReportsRequest(), "sup-a")).reports
    assert [r.report_id for r in listed] == [report.report_id] and not listed[0].cards


async def test_exclusions_dry_runs_and_bad_months(knowledge: Knowledge) -> None:
    k = knowledge
    year, month = await hand_worked_month(k)
    dry = (
        await k.call(
            "RunMonthlyIteration",
            pb.RunMonthlyIterationRequest(month=date_pb2.Date(year=year, month=month), dry_run=True),
        )
    ).report
    assert dry.state == it.ITERATION_REPORT_STATE_DRY_RUN and list(dry.retired_card_ids) == ["bad"]
    await k.fails(
        grpc.StatusCode.FAILED_PRECONDITION,
        "ApplyIterationReport",
        pb.ApplyIterationReportRequest(report_id=dry.report_id),
    )
    assert events(await outbox_rows(k.db), "knowledge.MonthlyIterationCompleted") == []
    # The policy is checked: a zone must exist, counts and points stay in range.
    for path, policy in (
        ("iteration.time_zone", settings_pb2.IterationPolicy(time_zone="Mars/Olympus")),
        ("iteration.return_to_review_count", settings_pb2.IterationPolicy(return_to_review_count=-1)),
    ):
        req = pb.UpdateKnowledgeSettingsRequest(
            settings=settings_pb2.KnowledgeSettings(iteration=policy), update_mask=FieldMask(paths=[path])
        )
        err = await k.fails(grpc.StatusCode.INVALID_ARGUMENT, "UpdateKnowledgeSettings", req)
        assert path in (err.details() or "")
    now = datetime.now(UTC).astimezone(SHANGHAI)
    for y, m in ((now.year, now.month), (year, 13)):
        await k.fails(
            grpc.StatusCode.INVALID_ARGUMENT,
            "RunMonthlyIteration",
            pb.RunMonthlyIterationRequest(month=date_pb2.Date(year=y, month=m)),
        )
    report = (
        await k.call(
            "RunMonthlyIteration", pb.RunMonthlyIterationRequest(month=date_pb2.Date(year=year, month=month))
        )
    ).report
    assert report.report_id != dry.report_id
    applied = (
        await k.call(
            "ApplyIterationReport",
            pb.ApplyIterationReportRequest(report_id=report.report_id, excluded_card_ids=["bad"]),
        )
    ).report
    assert list(applied.retired_card_ids) == [] and list(applied.returned_to_review_card_ids) == ["meh"]
    bad = next(r for r in applied.cards if r.card_id == "bad")
    assert bad.action == A.ITERATION_ACTION_KEEP and bad.action_reason.endswith("spared by admin")
    got = (await k.call("GetSopCard", pb.GetSopCardRequest(card_id="bad"))).card
    assert got.status == CardStatus.CARD_STATUS_PUBLISHED


async def test_the_schedule_workflow_runs_last_month_and_applies_by_setting(
    temporal_skipping: Any, sqlite_url: str
) -> None:
    """The schedule's workflow at the server's clock: last month's report, applied automatically
    (the default mode) by system:knowledge; a second run (a retry) returns the same report."""
    from tests.knowledge.conftest import running_knowledge

    env = temporal_skipping
    async with running_knowledge(sqlite_url) as k:
        await hand_worked_month(k)
        # Back to the default: apply automatically.
        mask = FieldMask(paths=["iteration.apply_mode"])
        auto = settings_pb2.KnowledgeSettings(
            iteration=settings_pb2.IterationPolicy(apply_mode=settings_pb2.ITERATION_APPLY_MODE_AUTOMATIC)
        )
        await k.call(
            "UpdateKnowledgeSettings", pb.UpdateKnowledgeSettingsRequest(settings=auto, update_mask=mask)
        )
        queue = f"knowledge-{uuid.uuid4().hex[:8]}"
        acts = IterationActivities(k.db, None)
        workflows = [MonthlyIterationWorkflow, EnsureIterationSchedulesWorkflow]
        # No skipping while it runs: the idle server would otherwise jump years ahead between the runs.
        async with temporal.build_worker(env.client, queue, workflows=workflows, activities=[acts.run]):
            with env.auto_time_skipping_disabled():
                first: RunResult = await env.client.execute_workflow(
                    MonthlyIterationWorkflow.run,
                    MonthlyInput("demo"),
                    id=f"m-{uuid.uuid4().hex}",
                    task_queue=queue,
                )
                second: RunResult = await env.client.execute_workflow(
                    MonthlyIterationWorkflow.run,
                    MonthlyInput("demo"),
                    id=f"m-{uuid.uuid4().hex}",
                    task_queue=queue,
                )
            # A fixed clock: the next 1st at 00:30 in Shanghai, still the month's last day in UTC.
            # The month evaluated is the tenant's previous one (this month), not UTC's.
            local = (await env.get_current_time()).astimezone(SHANGHAI)
            this_month = (local.year, local.month)
            nxt = datetime(local.year + local.month // 12, local.month % 12 + 1, 1, 0, 30, tzinfo=SHANGHAI)
            assert nxt.astimezone(UTC).month == local.month
            await env.sleep(nxt - await env.get_current_time())
            with env.auto_time_skipping_disabled():
                third: RunResult = await env.client.execute_workflow(
                    MonthlyIterationWorkflow.run,
                    MonthlyInput("demo"),
                    id=f"m-{uuid.uuid4().hex}",
                    task_queue=queue,
                )
        assert first.report_id == second.report_id and first.state == it.ITERATION_REPORT_STATE_APPLIED
        later = (
            await k.call("GetIterationReport", pb.GetIterationReportRequest(report_id=third.report_id))
        ).report
        assert (later.month.year, later.month.month) == this_month and third.report_id != first.report_id
        year, month, _ = last_month(local)
        report = (
            await k.call("GetIterationReport", pb.GetIterationReportRequest(report_id=first.report_id))
        ).report
        assert (report.month.year, report.month.month) == (year, month)
        assert report.applied_by == "system:knowledge" and list(report.retired_card_ids) == ["bad"]
        bad = (await k.call("GetSopCard", pb.GetSopCardRequest(card_id="bad"))).card
        assert (
            bad.status == CardStatus.CARD_STATUS_RETIRED
            and bad.status_changed_by_user_id == "system:knowledge"
        )
        completed = events(await outbox_rows(k.db), "knowledge.MonthlyIterationCompleted")
        assert [(e.report_id, e.state) for e in completed] == [
            (first.report_id, it.ITERATION_REPORT_STATE_APPLIED),
            (third.report_id, it.ITERATION_REPORT_STATE_APPLIED),
        ]


async def test_a_schedule_per_tenant_on_its_day_time_and_zone(temporal_dev: Any, sqlite_url: str) -> None:
    client = temporal_dev.client
    db = Database(sqlite_url)
    await upgrade_to_head("knowledge", db)
    queue = f"knowledge-{uuid.uuid4().hex[:8]}"
    tenant = f"t{uuid.uuid4().hex[:8]}"
    try:
        async with transactions(db).read(tenant) as uow:
            policy = (await knowledge_settings.current(uow)).iteration
        assert await ensure_tenant_schedule(client, queue, tenant, policy) is True
        assert await ensure_tenant_schedule(client, queue, tenant, policy) is False  # unchanged: left alone
        handle = client.get_schedule_handle(schedule_id(tenant))
        described = await handle.describe()
        assert described.schedule.spec.time_zone_name == "Asia/Shanghai"
        [cal] = described.schedule.spec.calendars
        assert (cal.day_of_month[0].start, cal.hour[0].start, cal.minute[0].start) == (1, 3, 0)
        policy.time_zone, policy.run_day_of_month, policy.run_time.hours = "Europe/Berlin", 2, 5
        assert await ensure_tenant_schedule(client, queue, tenant, policy) is True
        described = await handle.describe()
        assert described.schedule.spec.time_zone_name == "Europe/Berlin"
        [cal] = described.schedule.spec.calendars
        assert (cal.day_of_month[0].start, cal.hour[0].start) == (2, 5)
        await handle.delete()
        assert iteration_activities.spec_of(policy).note == "monthly 2 05:00 Europe/Berlin"
    finally:
        await db.dispose()


async def test_concurrent_applies_change_each_card_once(knowledge: Knowledge) -> None:
    """Three admins apply the same proposal at once: the report's and the cards' compare-and-set let one
    through; the others get the applied report or ABORTED (retry), never a second retirement."""
    k = knowledge
    year, month = await hand_worked_month(k)
    run = pb.RunMonthlyIterationRequest(month=date_pb2.Date(year=year, month=month))
    report = (await k.call("RunMonthlyIteration", run)).report
    apply = pb.ApplyIterationReportRequest(report_id=report.report_id)
    outcomes = await asyncio.gather(
        *(k.call("ApplyIterationReport", apply) for _ in range(3)), return_exceptions=True
    )
    for o in outcomes:
        if isinstance(o, grpc.aio.AioRpcError):
            assert o.code() == grpc.StatusCode.ABORTED, o.details()
        else:
            assert not isinstance(o, BaseException) and o.report.state == it.ITERATION_REPORT_STATE_APPLIED
    assert any(not isinstance(o, BaseException) for o in outcomes)
    final = (await k.call("ApplyIterationReport", apply)).report
    assert final.state == it.ITERATION_REPORT_STATE_APPLIED and list(final.retired_card_ids) == ["bad"]
    async with k.db.session("demo") as s:
        moves = (
            await s.scalars(
                select(SopCardStatusChangeRow).where(SopCardStatusChangeRow.card_id.in_(["bad", "meh"]))
            )
        ).all()
    assert (
        sorted(m.reason.split(":")[0] for m in moves if m.reason.startswith("monthly"))
        == [f"monthly iteration {year:04d}-{month:02d}"] * 2
    )
