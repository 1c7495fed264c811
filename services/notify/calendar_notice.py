"""The business calendar's coverage warning, told to each tenant's admins once per year.

When the coming year (or the current one) lacks the State Council's holiday schedule,
deadlines there are computed without make-up working days (kit.calendar.coverage_gaps).
The daily digest sweep sends each tenant's admins one notice per gap: the dedupe key is
the gap's key (`business-calendar:<year>`) held for a year, so repeats are deduplicated.
"""

from __future__ import annotations

from datetime import date, timedelta

from google.protobuf.struct_pb2 import Struct
from sqlalchemy.ext.asyncio import AsyncSession

from kit.calendar import BusinessCalendar
from kit.calendar.coverage import coverage_gaps
from salesops.notify.v1 import notification_pb2 as N
from services.notify import sending

NOTICE_WINDOW = timedelta(days=366)


def notice(gap_key: str, year: int, message: str, admins: list[str]) -> N.Notification:
    values = Struct()
    values.update(
        {"title": f"Business calendar {year} needs the official holiday schedule", "message": message}
    )
    n = N.Notification(
        category=N.NOTIFICATION_CATEGORY_SYSTEM,
        recipients=[N.Recipient(user_id=a) for a in admins],
        template=N.TemplateContent(variables=values),
        dedupe_key=gap_key,
    )
    n.dedupe_window.FromTimedelta(NOTICE_WINDOW)
    return n


async def tell_admins(
    sender: sending.Sender,
    session: AsyncSession,
    tenant: str,
    admins: list[str],
    today: date,
    calendar: BusinessCalendar,
) -> list[sending.SendOutcome]:
    """One notice per coverage gap (deduplicated per tenant and year); the caller commits."""
    if not admins:
        return []
    return [
        await sender.send(tenant, notice(gap.key, gap.year, gap.message, admins), session=session)
        for gap in coverage_gaps(today, calendar)
    ]
