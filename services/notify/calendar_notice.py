"""The business calendar's coverage warning, told to each tenant's admins once per year.

When the coming year (or the current one) lacks the State Council's holiday schedule,
deadlines there are computed without make-up working days (kit.calendar.coverage_gaps).
The daily digest sweep sends each tenant's admins one notice per gap: the dedupe key is
the gap's key (`business-calendar:<year>`) held for a year, so repeats are deduplicated.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from google.protobuf.struct_pb2 import Struct

from kit.calendar import BusinessCalendar
from kit.calendar.coverage import coverage_gaps
from kit.resources import UnitOfWork
from salesops.notify.v1 import notification_pb2 as N
from services.notify import sending, tenant_settings

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
    sender: sending.Sender, uow: UnitOfWork, admins: list[str], now: datetime, calendar: BusinessCalendar
) -> list[sending.SendOutcome]:
    """One notice per coverage gap, judged on the tenant's own date (deduplicated per tenant and year)."""
    if not admins:
        return []
    zone = (await tenant_settings.load_defaults(uow.session)).time_zone
    today = now.astimezone(ZoneInfo(zone)).date()
    return [
        await sender.send(uow.tenant, notice(gap.key, gap.year, gap.message, admins), session=uow.session)
        for gap in coverage_gaps(today, calendar)
    ]
