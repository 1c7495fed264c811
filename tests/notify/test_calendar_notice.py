"""The business calendar's coverage gap reaches each tenant's admins once per year, from the daily sweep."""

from __future__ import annotations

from datetime import UTC, date, datetime

from temporalio.testing import ActivityEnvironment

from kit.calendar import BusinessCalendar
from kit.calendar.coverage import coverage_gaps
from salesops.common.v1 import types_pb2
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from salesops.notify.v1 import subscriber_pb2
from services.notify import activities, digests
from tests.notify.conftest import ADMIN, REP_A1, SERVICE, NotifyStack, auth

# Far beyond any published schedule: both this year and the next lack one.
LATER = datetime(2040, 12, 1, 9, 0, tzinfo=UTC)


async def _inbox(stack: NotifyStack, who: str) -> list[str]:
    page = await stack.stub.ListInboxItems(
        M.ListInboxItemsRequest(filter=M.InboxFilter(categories=[N.NOTIFICATION_CATEGORY_SYSTEM])),
        metadata=auth(who),
    )
    return [i.title for i in page.items]


async def test_admins_hear_of_each_uncovered_year_once(notify: NotifyStack) -> None:
    admin = subscriber_pb2.Subscriber(
        user_id="admin-1", display_name="Admin", org_unit_path="", active=True, roles=[types_pb2.ROLE_ADMIN]
    )
    await notify.stub.BatchUpsertSubscribers(
        M.BatchUpsertSubscribersRequest(subscribers=[admin]), metadata=auth(SERVICE)
    )
    gaps = coverage_gaps(date(2040, 12, 1), BusinessCalendar())
    assert {g.year for g in gaps} == {2040, 2041}
    acts = activities.DigestActivities(notify.rt.db, notify.rt.redis, BusinessCalendar())
    for _ in range(2):  # the second sweep finds the notices already sent
        await ActivityEnvironment().run(acts.sweep, digests.SweepRequest(now=LATER.isoformat()))
    titles = await _inbox(notify, ADMIN)
    assert sorted(titles) == [
        "Business calendar 2040 needs the official holiday schedule",
        "Business calendar 2041 needs the official holiday schedule",
    ]
    assert await _inbox(notify, REP_A1) == []  # admins only


async def test_a_covered_calendar_sends_nothing(notify: NotifyStack) -> None:
    acts = activities.DigestActivities(notify.rt.db, notify.rt.redis, BusinessCalendar(use_cn_holidays=False))
    await ActivityEnvironment().run(acts.sweep, digests.SweepRequest(now=LATER.isoformat()))
    assert await _inbox(notify, ADMIN) == []
