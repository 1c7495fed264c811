"""Daily digests: a Temporal schedule sweeps every 15 minutes and sends each due user's digest once.

"Once" is the dedupe key `digest:<user>:<local date>`: a sweep that runs twice,
or two workers, cannot send a second digest for the same day.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from kit.resources import UnitOfWork
from salesops.notify.v1 import digest_pb2, notification_pb2, preference_pb2
from services.notify import convert, preferences, sending, tenant_settings
from services.notify.domain import digest as rules
from services.notify.repositories import on_session
from services.notify.repositories.inbox import InboxRepository
from services.notify.workflows import DigestSweepWorkflow, SweepRequest

log = logging.getLogger("salesops.notify.digests")
N = notification_pb2
DIGEST_ROLES = ("rep", "supervisor", "director")
_KINDS = {
    rules.DUE_TODAY: digest_pb2.DIGEST_SECTION_KIND_DUE_TODAY,
    rules.BREACHED: digest_pb2.DIGEST_SECTION_KIND_BREACHED,
    rules.APPROVALS_WAITING: digest_pb2.DIGEST_SECTION_KIND_APPROVALS_WAITING,
    rules.AWAITING_ACK: digest_pb2.DIGEST_SECTION_KIND_AWAITING_ACK,
}


@dataclass
class DigestSettings:
    enabled: bool
    send_time: time
    skip_when_empty: bool
    time_zone: str


def settings_for(
    pref: preference_pb2.Preference | None, roles: set[str], tenant: object = None
) -> DigestSettings:
    eff = preferences.effective(pref, tenant)
    default_on = bool(roles & set(DIGEST_ROLES))
    if pref is None or not pref.HasField("digest"):
        return DigestSettings(default_on, rules.DEFAULT_SEND_TIME, True, eff.time_zone)
    d = pref.digest
    send = (
        time(d.send_time.hours % 24, d.send_time.minutes)
        if d.HasField("send_time")
        else rules.DEFAULT_SEND_TIME
    )
    return DigestSettings(d.enabled, send, d.skip_when_empty, eff.time_zone)


async def entries(session: AsyncSession, user_id: str, day: date) -> list[rules.Entry]:
    horizon = datetime.combine(day, time(0), tzinfo=UTC) - timedelta(days=14)
    rows = await InboxRepository(on_session(session)).recent(user_id, horizon)
    return [
        rules.Entry(
            r.notification_id,
            r.category,
            r.priority,
            r.title,
            convert.aware(r.created_at),
            convert.aware(r.due_time) if r.due_time else None,
            r.state == 1,
            r.ack_required,
        )
        for r in rows
    ]


def as_proto(user_id: str, day: date, tz: str, sections: list[rules.Section]) -> digest_pb2.Digest:
    out = digest_pb2.Digest(user_id=user_id, time_zone=tz)
    out.date.year, out.date.month, out.date.day = day.year, day.month, day.day
    for section in sections:
        s = out.sections.add(kind=_KINDS[section.kind], total_count=section.total)  # type: ignore[arg-type]
        for e in section.entries:
            entry = s.entries.add(notification_id=e.notification_id, title=e.title)
            entry.category = convert.category_enum(e.category)  # type: ignore[assignment]
            entry.priority = e.priority  # type: ignore[assignment]
            entry.create_time.FromDatetime(e.created_at)
            if e.due_time is not None:
                entry.due_time.FromDatetime(e.due_time)
    return out


def digest_notification(user_id: str, day: date, sections: list[rules.Section]) -> N.Notification:
    counts = {s.kind: s.total for s in sections}
    n = N.Notification(
        category=N.NOTIFICATION_CATEGORY_DIGEST,
        recipients=[N.Recipient(user_id=user_id)],
        template=N.TemplateContent(),
        dedupe_key=f"digest:{user_id}:{day.isoformat()}",
    )
    n.template.variables.update(
        {
            "due_today": counts.get(rules.DUE_TODAY, 0),
            "breached": counts.get(rules.BREACHED, 0),
            "approvals": counts.get(rules.APPROVALS_WAITING, 0),
        }
    )
    n.dedupe_window.FromSeconds(36 * 3600)
    return n


SCHEDULE_ID = "notify/daily-digest"


async def ensure_schedule(client: Client, task_queue: str, every: timedelta = timedelta(minutes=15)) -> None:
    """Create the digest schedule once; a second worker finding it is fine."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            DigestSweepWorkflow.run, SweepRequest(), id="notify-digest-sweep", task_queue=task_queue
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await client.create_schedule(SCHEDULE_ID, schedule)


async def send_due(
    uow: UnitOfWork, sender: sending.Sender, user_id: str, roles: str, now: datetime
) -> sending.SendOutcome | None:
    """Send one user's digest if it is due today in their zone (None: not due, or empty and skipped)."""
    s = uow.session
    pref = (await preferences.load(s, [user_id])).get(user_id)
    cfg = settings_for(pref, set(roles.split(",")), await tenant_settings.load_defaults(s))
    day = rules.due_date(now, cfg.time_zone, cfg.send_time) if cfg.enabled else None
    if day is None:
        return None
    sections = rules.build(await entries(s, user_id, day), day, cfg.time_zone)
    if not sections and cfg.skip_when_empty:
        return None
    return await sender.send(uow.tenant, digest_notification(user_id, day, sections), session=s)
