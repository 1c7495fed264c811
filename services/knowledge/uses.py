"""Card uses and feedback duties: record a use, rate it, and the duty's timeline the timer walks.

Each takes the unit of work and never commits. Who may see what is asked of
use_access.py, rules of domain/duties.py. The duty's durable timer (duty_workflows.py)
calls `next_point` and `fire` through duty_activities.py; deadlines are computed
here, in wall-clock or business time as the tenant's knowledge settings say.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kit.auth import Principal
from kit.calendar import BusinessCalendar, calendar_from_env
from kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    PreconditionViolation,
)
from kit.resources import UnitOfWork, sanitize_create
from salesops.knowledge.v1 import events_pb2
from salesops.knowledge.v1.sop_card_pb2 import CardStatus
from salesops.knowledge.v1.usage_pb2 import CardFeedback, CardUse
from services.knowledge import cards, knowledge_settings, use_access
from services.knowledge.domain import duties as rules
from services.knowledge.domain.cards import PUBLISHED
from services.knowledge.duty_workflows import workflow_id
from services.knowledge.presenters import ts
from services.knowledge.repositories.usage_days import UsageDays
from services.knowledge.repositories.uses import CardUses, FeedbackDuties
from services.knowledge.store_uses import CardUseRow, FeedbackDutyRow

EVENT_USED = "knowledge.CardUsed"
EVENT_FEEDBACK = "knowledge.FeedbackRecorded"
EVENT_DUE = "knowledge.FeedbackDue"
MAX_ID = 64

# The deployment's business calendar (SALESOPS_BUSINESS_CALENDAR), the one lead SLAs use;
# read once: per-tenant calendars are not built yet.
_CALENDAR: BusinessCalendar | None = None


def calendar() -> BusinessCalendar:
    global _CALENDAR
    if _CALENDAR is None:
        _CALENDAR = calendar_from_env()
    return _CALENDAR


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Policy:
    """The feedback policy in effect: the window and the reminder offsets, and how time is added."""

    window: timedelta
    offsets: tuple[timedelta, ...]
    business_time: bool

    def shift(self, at: datetime, by: timedelta) -> datetime:
        if not self.business_time:
            return at + by
        if by >= timedelta(0):
            return calendar().add_business_time(at, by)
        return calendar().subtract_business_time(at, -by)

    def due(self, used_at: datetime) -> datetime:
        return self.shift(used_at, self.window)

    def timeline(self, due: datetime) -> list[rules.Point]:
        return rules.timeline(due, self.offsets, self.shift)


async def policy(uow: UnitOfWork) -> Policy:
    fb = (await knowledge_settings.current(uow)).feedback
    defaults = knowledge_settings.DEFAULTS.feedback
    window = fb.window.ToTimedelta() if fb.window.seconds > 0 else defaults.window.ToTimedelta()
    return Policy(window, tuple(o.ToTimedelta() for o in fb.reminder_offsets), fb.business_time)


def _digest(card_id: str, use: CardUse) -> str:
    clean = sanitize_create(use)
    return hashlib.sha256(card_id.encode() + b"\0" + clean.SerializeToString(deterministic=True)).hexdigest()


def _check_use(card_id: str, use: CardUse, now: datetime) -> datetime:
    """Field checks of a RecordSopCardUse; returns when the card was used."""
    problems: list[FieldViolation] = []
    if not cards.CARD_ID.match(use.use_id):
        problems.append(FieldViolation("use.use_id", "required: a client ULID (letters, digits, _ and -)"))
    subject = use.WhichOneof("subject")
    if subject is None or not getattr(use, subject):
        problems.append(FieldViolation("use.deal_id", "exactly one of deal_id or lead_id is required"))
    for name in ("deal_id", "lead_id", "customer_id", "stage_id", "industry", "recommendation_id"):
        if len(getattr(use, name)) > MAX_ID:
            problems.append(FieldViolation(f"use.{name}", f"at most {MAX_ID} characters"))
    if use.card_id and use.card_id != card_id:
        problems.append(FieldViolation("use.card_id", "must be empty or equal card_id"))
    used_at = use.use_time.ToDatetime(tzinfo=UTC) if use.HasField("use_time") else now
    problems += [FieldViolation(p.field, p.description) for p in rules.use_time_problems(used_at, now)]
    if problems:
        summary = "; ".join(f"{p.field}: {p.description}" for p in problems[:3])
        raise InvalidArgument(f"invalid card use: {summary}", problems)
    return used_at


def _org(who: Principal) -> str:
    return "/".join(p for p in who.org.split("/") if p)


async def record_use(
    uow: UnitOfWork, who: Principal, card_id: str, use: CardUse, now: datetime
) -> tuple[CardUseRow, FeedbackDutyRow, bool]:
    """Record a use by the caller; the first on (rep, card, deal or lead) opens the feedback duty.

    Returns the use, its duty and whether the duty already existed (a repeat use). A replay
    of the same use_id with the same content returns the stored use; other content with a
    taken use_id is ALREADY_EXISTS.
    """
    used_at = _check_use(card_id, use, now)
    digest = _digest(card_id, use)
    uses, duties = CardUses(uow), FeedbackDuties(uow)
    found = await uses.find(use.use_id)
    if found is not None:
        if found.request_digest != digest or found.user_id != who.user_id:
            raise AlreadyExists(uses.resource, use.use_id, "a different use already has this use_id")
        duty = await duties.get(found.duty_id)
        return found, duty, found.duty_id != found.use_id
    card, _ = await cards.visible(uow, who, card_id)
    if card.status != PUBLISHED:
        state = CardStatus.Name(card.status)  # type: ignore[arg-type]
        raise FailedPrecondition(
            f"only published cards are used; this one is {state}",
            [PreconditionViolation("CARD_STATUS", card_id, f"the card is {state}")],
            reason="CARD_STATUS",
        )
    deal_id = use.deal_id if use.WhichOneof("subject") == "deal_id" else ""
    lead_id = use.lead_id if use.WhichOneof("subject") == "lead_id" else ""
    org = _org(who)
    existing = await duties.for_subject(who.user_id, card_id, deal_id, lead_id)
    repeat = existing is not None
    if existing is not None:
        duty = existing
    else:
        due = (await policy(uow)).due(used_at)
        duty = await duties.add(
            FeedbackDutyRow(
                duty_id=use.use_id,
                use_id=use.use_id,
                card_id=card_id,
                card_version=card.published_version,
                card_title=card.title,
                user_id=who.user_id,
                org_path=org,
                deal_id=deal_id,
                lead_id=lead_id,
                industry=use.industry,
                stage_id=use.stage_id,
                used_at=used_at,
                due_at=due,
                state=rules.PENDING,
                reminders_sent=0,
                rating=0,
                reason_category=0,
                reason="",
                late=False,
                workflow_id=workflow_id(uow.tenant, use.use_id),
                created_at=now,
                updated_at=now,
                version=1,
            )
        )
    row = await uses.add(
        CardUseRow(
            use_id=use.use_id,
            card_id=card_id,
            card_version=card.published_version,
            user_id=who.user_id,
            org_path=org,
            deal_id=deal_id,
            lead_id=lead_id,
            customer_id=use.customer_id,
            industry=use.industry,
            stage_id=use.stage_id,
            recommendation_id=use.recommendation_id,
            used_at=used_at,
            recorded_at=now,
            duty_id=duty.duty_id,
            request_digest=digest,
        )
    )
    settings = await knowledge_settings.STORE.get(uow)
    await UsageDays(uow).count_use(
        card_id, who.user_id, used_at, knowledge_settings.newcomer_tenure(settings)
    )
    event = events_pb2.CardUsed(
        use_id=row.use_id,
        card_id=card_id,
        card_version=row.card_version,
        scenario=card.scenario,
        card_title=card.title,
        user_id=who.user_id,
        customer_id=row.customer_id,
        stage_id=row.stage_id,
        recommendation_id=row.recommendation_id,
        use_time=ts(used_at),
        feedback_due_time=ts(aware(duty.due_at)),
        duty_use_id=duty.duty_id,
    )
    if deal_id:
        event.deal_id = deal_id
    else:
        event.lead_id = lead_id
    await uow.emit(EVENT_USED, event, subject=deal_id or lead_id)
    return row, duty, repeat


async def get_use(uow: UnitOfWork, who: Principal, use_id: str) -> tuple[CardUseRow, FeedbackDutyRow]:
    if not cards.CARD_ID.match(use_id):
        raise InvalidArgument.field("use_id", "a use id (letters, digits, _ and -, at most 64)")
    row = await CardUses(uow).get(use_id)
    use_access.require_see(who, row.user_id, row.org_path, use_id)
    return row, await FeedbackDuties(uow).get(row.duty_id)


async def duties_of(uow: UnitOfWork, rows: Sequence[CardUseRow]) -> dict[str, FeedbackDutyRow]:
    return await FeedbackDuties(uow).by_ids([r.duty_id for r in rows])


async def submit_feedback(
    uow: UnitOfWork, who: Principal, use_id: str, feedback: CardFeedback, now: datetime
) -> tuple[CardUseRow, FeedbackDutyRow]:
    """Rate a used card (its duty): late when given after the deadline, still counted.

    A repeat with the same content is a no-op; different feedback on a rated duty is
    FAILED_PRECONDITION. Only the rep who used the card rates it.
    """
    reason = feedback.reason.strip()
    problems = rules.feedback_problems(feedback.rating, feedback.reason_category, reason)
    if problems:
        summary = "; ".join(f"{p.field}: {p.description}" for p in problems[:3])
        raise InvalidArgument(
            f"invalid feedback: {summary}", [FieldViolation(p.field, p.description) for p in problems]
        )
    if not cards.CARD_ID.match(use_id):
        raise InvalidArgument.field("use_id", "a use id (letters, digits, _ and -, at most 64)")
    row = await CardUses(uow).get(use_id)
    use_access.require_owner(who, row.user_id, row.org_path, use_id)
    duties = FeedbackDuties(uow)
    duty = await duties.get(row.duty_id)
    incoming = (int(feedback.rating), int(feedback.reason_category), reason)
    if duty.state == rules.SUBMITTED:
        if rules.same_feedback((duty.rating, duty.reason_category, duty.reason), incoming):
            return row, duty
        raise FailedPrecondition(
            "this card use was already rated; feedback is given once",
            [PreconditionViolation("FEEDBACK_GIVEN", duty.duty_id, "already rated")],
            reason="FEEDBACK_GIVEN",
        )
    submitted = feedback.submit_time.ToDatetime(tzinfo=UTC) if feedback.HasField("submit_time") else None
    given = rules.effective_submit_time(submitted, aware(duty.used_at), now)
    duty.rating, duty.reason_category, duty.reason = incoming
    duty.submitted_at, duty.recorded_at = given, now
    duty.late = rules.is_late(given, aware(duty.due_at))
    duty.state = rules.SUBMITTED
    await duties.touch(duty, now)
    await UsageDays(uow).count_feedback(duty.card_id, duty.rating, now)
    event = events_pb2.FeedbackRecorded(
        use_id=use_id,
        card_id=duty.card_id,
        card_version=duty.card_version,
        user_id=duty.user_id,
        rating=duty.rating,  # type: ignore[arg-type]
        reason_category=duty.reason_category,  # type: ignore[arg-type]
        late=duty.late,
        record_time=ts(now),
        duty_use_id=duty.duty_id,
    )
    if duty.deal_id:
        event.deal_id = duty.deal_id
    else:
        event.lead_id = duty.lead_id
    await uow.emit(EVENT_FEEDBACK, event, subject=duty.card_id)
    return row, duty


# ------------------------------------------------------------------ the duty's timer


async def next_point(uow: UnitOfWork, duty_id: str) -> rules.Point | None:
    """The duty's next reminder, or None when it is rated, gone, or every reminder went out."""
    duty = await FeedbackDuties(uow).find(duty_id)
    if duty is None or duty.state == rules.SUBMITTED:
        return None
    points = (await policy(uow)).timeline(aware(duty.due_at))
    return rules.next_point(points, duty.reminders_sent)


async def fire(
    uow: UnitOfWork, duty_id: str, number: int, at: datetime, now: datetime | None = None
) -> rules.Point | None:
    """Send reminder `number` if the duty still owes feedback and it was not sent; mark OVERDUE at the
    deadline. Re-checked here, so a retried or raced timer sends nothing twice. When later reminders
    are due by `now` as well (a use logged late, a worker that was down), only the latest is sent.
    Returns the next point."""
    duties = FeedbackDuties(uow)
    duty = await duties.find(duty_id)
    if duty is None or duty.state == rules.SUBMITTED:
        return None
    due = aware(duty.due_at)
    points = (await policy(uow)).timeline(due)
    number = rules.latest_due(points, number, now or at)
    if duty.reminders_sent < number <= len(points):
        point = points[number - 1]
        at = max(at, point.at)
        overdue = point.overdue or at >= due
        duty.reminders_sent = number
        duty.reminded_at = at
        if overdue and duty.state == rules.PENDING:
            duty.state, duty.overdue_at = rules.OVERDUE, at
        await duties.touch(duty, at)
        event = events_pb2.FeedbackDue(
            use_id=duty.use_id,
            user_id=duty.user_id,
            due_time=ts(due),
            card_id=duty.card_id,
            card_title=duty.card_title,
            reminder_number=number,
            overdue=overdue,
            org_path=duty.org_path,
        )
        if duty.deal_id:
            event.deal_id = duty.deal_id
        else:
            event.lead_id = duty.lead_id
        await uow.emit(EVENT_DUE, event, subject=duty.use_id)
    return rules.next_point(points, duty.reminders_sent)
