"""Monthly iteration use cases: run (compute a report, apply it by tenant setting) and apply.

A report covers one calendar month in the tenant's zone (IterationPolicy.time_zone,
else the deployment calendar's). One report per tenant and month: a re-run replaces
a PROPOSED one (same id) and returns an APPLIED one as it is, so a schedule retry is
harmless; dry runs get their own slot. Applying retires and returns cards through
the cards use case (`cards.change_status`): each change keeps who (the admin, or
`system:knowledge` when automatic) and why in the card's history, with the report
id on the events. Applying twice returns the applied report.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ulid import ULID

from kit.auth import Principal
from kit.calendar import calendar_from_env
from kit.errors import FailedPrecondition, InvalidArgument, PreconditionViolation
from kit.resources import UnitOfWork
from salesops.common.v1 import types_pb2
from salesops.knowledge.v1 import events_pb2
from salesops.knowledge.v1 import iteration_pb2 as it
from salesops.knowledge.v1 import settings_pb2 as s
from services.knowledge import access, cards, knowledge_settings
from services.knowledge.domain import iteration as rules
from services.knowledge.domain.cards import PUBLISHED, RETIRED
from services.knowledge.domain.lift import DEFAULT_MIN_SAMPLE, lift_of
from services.knowledge.presenters import ts
from services.knowledge.repositories.cards import Cards
from services.knowledge.repositories.iteration import (
    FULLY,
    NOT_APPLICABLE,
    PARTLY,
    IterationReports,
    MonthFigures,
)
from services.knowledge.store_iteration import IterationReportRow

SYSTEM_USER = "system:knowledge"
EVENT_COMPLETED = "knowledge.MonthlyIterationCompleted"
S = it.IterationReportState
ACTIONS = {
    rules.Action.KEEP: it.ITERATION_ACTION_KEEP,
    rules.Action.RETIRE: it.ITERATION_ACTION_RETIRE,
    rules.Action.RETURN_TO_REVIEW: it.ITERATION_ACTION_RETURN_TO_REVIEW,
    rules.Action.EXEMPT: it.ITERATION_ACTION_EXEMPT,
}


def system_admin(tenant: str) -> Principal:
    """Who the schedule and automatic applies act as: retiring is an admin's act."""
    return Principal(SYSTEM_USER, tenant, frozenset({"admin"}), "", datetime.max.replace(tzinfo=UTC))


def zone_of(policy: s.IterationPolicy) -> ZoneInfo:
    name = policy.time_zone or calendar_from_env().timezone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(calendar_from_env().timezone)


def window(year: int, month: int, zone: ZoneInfo) -> tuple[datetime, datetime]:
    (y, m), (ny, nm) = rules.month_bounds(year, month)
    return datetime(y, m, 1, tzinfo=zone).astimezone(UTC), datetime(ny, nm, 1, tzinfo=zone).astimezone(UTC)


def policy_of(p: s.IterationPolicy) -> rules.Policy:
    return rules.Policy(
        retire_max_usage=p.retire_max_usage_rate,
        retire_min_negative=p.retire_min_negative_rate,
        return_count=p.return_to_review_count,
        min_feedback=p.min_feedback_count,
        grace=p.new_card_grace_period.ToTimedelta(),
        partly_half_negative=p.partly_counts_half_negative,
        basis=rules.Basis.AUDIENCE if p.usage_basis == s.USAGE_BASIS_AUDIENCE else rules.Basis.IMPRESSIONS,
    )


def slot(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def check_month(year: int, month: int, today: date) -> None:
    if not (1 <= month <= 12 and 2000 <= year <= 9999):
        raise InvalidArgument.field("month", "a year and month (day 0)")
    if (year, month) >= (today.year, today.month):
        raise InvalidArgument.field("month", f"a past month (today is {today.isoformat()}, tenant zone)")


def _top_reason(reasons: dict[int, int]) -> it.FeedbackReasonCategoryCount | None:
    if not reasons:
        return None
    category, count = min(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    return it.FeedbackReasonCategoryCount(category=category, count=count)  # type: ignore[arg-type]


async def compute(
    uow: UnitOfWork, year: int, month: int, settings: s.KnowledgeSettings, at: datetime
) -> it.IterationReport:
    """The month's figures and decisions as a report (state left for the caller)."""
    policy = settings.iteration
    zone = zone_of(policy)
    start, end = window(year, month, zone)
    figures = MonthFigures(uow)
    rules_policy = policy_of(policy)
    published = await figures.published_cards()
    per_card = await figures.per_card(start, end, policy.partly_counts_half_negative)
    totals = await figures.totals(start, end)
    lifts = await figures.lift_counts()
    min_sample = settings.recommendation.lift_min_sample or DEFAULT_MIN_SAMPLE
    months: list[rules.CardMonth] = []
    for c in published:
        f = per_card.get(c.card_id)
        months.append(
            rules.CardMonth(
                card_id=c.card_id,
                first_published_at=c.first_published_at.replace(tzinfo=c.first_published_at.tzinfo or UTC),
                industries=tuple(c.industries),
                stage_ids=tuple(c.stage_ids),
                uses=f.uses if f else 0,
                users=f.users if f else 0,
                impressions=f.impressions if f else None,
                recommended_uses=f.recommended_uses if f else None,
                fully=f.ratings.get(FULLY, 0) if f else 0,
                partly=f.ratings.get(PARTLY, 0) if f else 0,
                not_applicable=f.ratings.get(NOT_APPLICABLE, 0) if f else 0,
            )
        )
    outcome = rules.decide(months, rules_policy, totals.active_users, end)
    by_id = {c.card_id: c for c in published}
    month_of = {m.card_id: m for m in months}
    report = it.IterationReport(
        period=types_pb2.Period(start_time=ts(start), end_time=ts(end)),
        policy=policy,
        cards_considered=outcome.considered,
        uses=totals.uses,
        rep_adoption_rate=totals.using_users / totals.active_users if totals.active_users else 0.0,
        feedback_count=totals.feedback,
        feedback_on_time_rate=totals.feedback_on_time / totals.feedback if totals.feedback else 0.0,
        contributions_submitted=totals.contributions_submitted,
        contributions_accepted=totals.contributions_accepted,
        retired_card_ids=outcome.retired,
        returned_to_review_card_ids=outcome.returned,
        complete_time=ts(at),
    )
    report.month.year, report.month.month = year, month
    negative_all = 0.0
    for d in outcome.decisions:
        m, c = month_of[d.card_id], by_id[d.card_id]
        negative_all += d.negative_rate * m.feedback
        row = report.cards.add(
            card_id=d.card_id,
            card_version=c.version,
            title=c.title,
            impressions=m.impressions or 0,
            uses=m.uses,
            usage_rate=d.usage_rate,
            feedback_fully=m.fully,
            feedback_partly=m.partly,
            feedback_not_applicable=m.not_applicable,
            negative_rate=d.negative_rate,
            action=ACTIONS[d.action],
            action_reason=d.reason,
        )
        if d.card_id in lifts and (lift := lift_of(lifts[d.card_id], min_sample)).lift_pp is not None:
            row.win_rate_lift_pp = lift.lift_pp  # pooled over the card's cells, all closed deals so far
        f = per_card.get(d.card_id)
        top = _top_reason(f.reasons) if f else None
        if top is not None:
            row.top_reason.CopyFrom(top)
    rated = sum(m.feedback for m in months)
    report.negative_rate = negative_all / rated if rated else 0.0
    return report


def _outcome_of(report: it.IterationReport) -> rules.Outcome:
    back = {v: k for k, v in ACTIONS.items()}
    decisions = [
        rules.Decision(r.card_id, r.usage_rate, r.negative_rate, back[r.action], r.action_reason)
        for r in report.cards
    ]
    return rules.Outcome(
        decisions,
        list(report.retired_card_ids),
        list(report.returned_to_review_card_ids),
        report.cards_considered,
    )


async def run(
    uow: UnitOfWork, who: Principal, year: int, month: int, dry_run: bool, at: datetime
) -> IterationReportRow:
    """RunMonthlyIteration and the schedule: compute, store, apply when the tenant says so."""
    access.require_admin(who)
    settings = await knowledge_settings.current(uow)
    check_month(year, month, at.astimezone(zone_of(settings.iteration)).date())
    repo = IterationReports(uow)
    existing = None if dry_run else await repo.by_slot(slot(year, month))
    if existing is not None and existing.state == S.ITERATION_REPORT_STATE_APPLIED:
        return existing  # an applied month is never recomputed
    report = await compute(uow, year, month, settings, at)
    if existing is None:
        report_id = str(ULID())
        row = IterationReportRow(
            report_id=report_id,
            slot=f"dry:{report_id}" if dry_run else slot(year, month),
            year=year,
            month=month,
            created_at=at,
            created_by=who.user_id,
            applied_by="",
            version=1,
        )
    else:
        row = existing
    report.report_id = row.report_id
    report.state = S.ITERATION_REPORT_STATE_DRY_RUN if dry_run else S.ITERATION_REPORT_STATE_PROPOSED
    row.state, row.completed_at = report.state, at
    row.body = report.SerializeToString(deterministic=True)
    if existing is None:
        await repo.add(row)
    else:
        await repo.update_if_etag(row, "")
    if dry_run:
        return row
    if settings.iteration.apply_mode != s.ITERATION_APPLY_MODE_PROPOSE:
        return await apply(uow, system_admin(uow.tenant), row.report_id, (), at, completed=False)
    await _completed(uow, report)
    return row


async def apply(
    uow: UnitOfWork,
    who: Principal,
    report_id: str,
    excluded: Iterable[str],
    at: datetime,
    *,
    completed: bool = True,
) -> IterationReportRow:
    """ApplyIterationReport: retire and return the proposed cards (minus `excluded`); idempotent.

    A card changed since the proposal (no longer published, or retired by hand) is left alone
    and its row says so. `completed`: the report was announced as PROPOSED already.
    """
    access.require_admin(who)
    repo = IterationReports(uow)
    row = await repo.get(report_id)
    if row.state == S.ITERATION_REPORT_STATE_APPLIED:
        return row
    if row.state != S.ITERATION_REPORT_STATE_PROPOSED:
        state = S.Name(row.state)  # type: ignore[arg-type]
        raise FailedPrecondition(
            f"only a proposed report is applied; this one is {state}",
            [PreconditionViolation("REPORT_STATE", report_id, f"the report is {state}")],
            reason="REPORT_STATE",
        )
    report = it.IterationReport.FromString(row.body)
    outcome = rules.spare(_outcome_of(report), excluded, who.user_id)
    name = f"{report.month.year:04d}-{report.month.month:02d}"
    done: dict[str, list[str]] = {"retire": [], "return_to_review": []}
    notes: dict[str, str] = {}
    for action, ids, allowed in (
        ("retire", outcome.retired, (PUBLISHED,)),
        ("return_to_review", outcome.returned, (PUBLISHED, RETIRED)),
    ):
        for card_id in ids:
            decision = next(d for d in outcome.decisions if d.card_id == card_id)
            card = await Cards(uow).find(card_id)
            if card is None or card.status not in allowed:
                notes[card_id] = f"{decision.reason}; not applied: the card changed since the proposal"
                continue
            why = f"monthly iteration {name}: {decision.reason}"
            await cards.change_status(
                uow, who, action, card_id, why[: cards.MAX_REASON], "", at, iteration_report_id=report_id
            )
            done[action].append(card_id)
    applied = set(done["retire"]) | set(done["return_to_review"])
    del report.retired_card_ids[:], report.returned_to_review_card_ids[:]
    report.retired_card_ids.extend(done["retire"])
    report.returned_to_review_card_ids.extend(done["return_to_review"])
    for r, d in zip(report.cards, outcome.decisions, strict=True):
        if d.card_id in notes:
            r.action, r.action_reason = it.ITERATION_ACTION_KEEP, notes[d.card_id]
        elif d.card_id not in applied and r.action in (
            it.ITERATION_ACTION_RETIRE,
            it.ITERATION_ACTION_RETURN_TO_REVIEW,
        ):
            r.action, r.action_reason = it.ITERATION_ACTION_KEEP, d.reason
    report.state = S.ITERATION_REPORT_STATE_APPLIED
    report.apply_time.CopyFrom(ts(at))
    report.applied_by = who.user_id
    row.state, row.applied_at, row.applied_by = report.state, at, who.user_id
    row.body = report.SerializeToString(deterministic=True)
    await repo.update_if_etag(row, "")  # compare-and-set: a concurrent apply is ABORTED, not doubled
    if not completed:
        await _completed(uow, report)
    return row


async def _completed(uow: UnitOfWork, report: it.IterationReport) -> None:
    await uow.emit(
        EVENT_COMPLETED,
        events_pb2.MonthlyIterationCompleted(
            report_id=report.report_id,
            month=report.month,
            state=report.state,
            cards_considered=report.cards_considered,
            rep_adoption_rate=report.rep_adoption_rate,
            negative_rate=report.negative_rate,
            retired_card_ids=report.retired_card_ids,
            returned_to_review_card_ids=report.returned_to_review_card_ids,
            complete_time=report.complete_time,
        ),
        subject=report.report_id,
    )


async def run_scheduled(uow: UnitOfWork, at: datetime) -> IterationReportRow:
    """The schedule's run: the month before the tenant's today, as the system admin."""
    settings = await knowledge_settings.current(uow)
    today = at.astimezone(zone_of(settings.iteration)).date()
    year, month = rules.previous_month(today.year, today.month)
    return await run(uow, system_admin(uow.tenant), year, month, False, at)
